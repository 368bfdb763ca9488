// The search form, with the upload's progress and then "extracting" while the server works.
// Without this script the form still posts and the server answers with the page.
const form = document.getElementById("search-form");
const input = document.getElementById("clip");
const drop = document.getElementById("drop");
const status = document.getElementById("status");
const bar = document.getElementById("progress");

for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, e => { e.preventDefault(); drop.classList.add("over"); });
for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault();
  if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; form.requestSubmit(); }
});

form.addEventListener("submit", e => {
  e.preventDefault();
  if (!input.files.length) return;
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  bar.hidden = false;
  request.upload.addEventListener("progress", p => {
    if (p.lengthComputable) bar.value = 100 * p.loaded / p.total;
    status.textContent = "uploading " + input.files[0].name;
  });
  request.upload.addEventListener("load", () => { bar.removeAttribute("value"); status.textContent = "extracting and searching…"; });
  request.addEventListener("load", () => {
    // the server's page (results or a plain error), shown as a page of its own
    document.open(); document.write(request.responseText); document.close();
  });
  request.addEventListener("error", () => { status.textContent = "the upload failed: is the server still running?"; });
  request.send(new FormData(form));
});
