"""`framegram serve`: a web page and a JSON API over one search index (FastAPI, Jinja2 templates).

Safety, by construction:
- an upload is streamed into a private temporary folder (mode 0700), refused past the size limit,
  checked by decoding it (never by its name), and deleted when its search ends;
- no path a client sends is ever opened: videos are served by their position in the index's
  records (`/media/{number}`), and only files those records name;
- templates autoescape every string; the page's script writes text with `textContent` only;
- the index is opened afresh per request (a snapshot), so searches keep working while
  `framegram index add` commits to it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.trustedhost import TrustedHostMiddleware

from framegram.errors import FramegramError, InputError
from framegram.search import VideoIndex, search
from framegram.search.match import Match
from framegram.serve.catalog import BackgroundDescriber, cached_card, video_card

HERE = Path(__file__).parent
DEFAULT_UPLOAD_LIMIT = 200 * 2**20
STRIP_FRAMES = 6
SEARCHES_AT_ONCE = 2  #: a search uses the cores; more at once only slows each
BUSY_WAIT_S = 60.0  #: how long a search waits for its turn before "busy" (503)
_FORM_MARGIN = 2**20  #: bytes of multipart framing allowed beyond the upload limit
PAGE_SIZE = 24  #: videos per browse page
_CHUNK = 2**20


class UploadRefused(Exception):
    """A client's upload that is not searched: (HTTP status, message for the client)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class SearchAnswer:
    """What a search found: matches over the threshold, and the best score seen (for "no match")."""

    matches: list[Match]
    best_score: float | None
    threshold: float
    query_strip: str | None  #: data: URL of the query's frame strip (PNG), for the page
    seconds: float  #: of the query


def create_app(index: str | Path, upload_limit: int = DEFAULT_UPLOAD_LIMIT, describe: bool = False,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The service over the index folder `index`; uploads above `upload_limit` bytes are refused.
    describe: make every video's browse card in a background thread from the start (else each is
    made when first shown). allowed_hosts: the Host headers answered (a server on localhost lists
    its own names, so a web page whose domain is rebound to 127.0.0.1 cannot read it); None: any."""
    index = Path(index)
    app = FastAPI(title="framegram", summary="Which indexed video is this clip from, and where.")
    app.state.index = index
    app.add_middleware(BodyLimit, limit=upload_limit + _FORM_MARGIN)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    searching = threading.BoundedSemaphore(SEARCHES_AT_ONCE)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes .html
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def open_index() -> VideoIndex:
        return VideoIndex.open(index)  # SearchIndexError (a FramegramError) when missing or damaged

    encoders: dict[str, object] = {}
    encoder_lock = threading.Lock()

    def encoder_of(ix: VideoIndex):
        """The index's encoder, loaded once for every search and card."""
        from framegram.encoders import get_encoder

        name = ix.fingerprint.encoder_name
        with encoder_lock:
            if name not in encoders:
                encoders[name] = get_encoder(name)
            return encoders[name]

    def video_at(ix: VideoIndex, number: int):
        """The video a URL's number names (its place in the index's records), or None."""
        return ix.videos[ix.ref_ids[number]] if 0 <= number < len(ix) else None

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"index": str(index), **context}, status_code=status)

    @app.exception_handler(FramegramError)
    async def index_trouble(request: Request, exc: FramegramError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return page(request, "error.html", 503, title="The index cannot be read", message=str(exc))

    @app.get("/api/health")
    def health() -> dict:
        """Whether the index opens; its size."""
        ix = open_index()
        return {"status": "ok", "videos": len(ix), "seconds": ix.total_rows}

    @app.get("/api/videos")
    def videos() -> list[dict]:
        """The indexed videos, in the index's order (`number` is what /media/{number} serves)."""
        ix = open_index()
        return [_video_row(k, ix.videos[r]) for k, r in enumerate(ix.ref_ids)]

    def searched(ix: VideoIndex, clip: UploadFile, top: int, strips: bool) -> SearchAnswer:
        """`run_search` with the app's encoder, SEARCHES_AT_ONCE at a time (the others wait)."""
        if not searching.acquire(timeout=BUSY_WAIT_S):
            raise UploadRefused(503, "the server is busy with other searches: try again in a moment")
        try:
            return run_search(ix, clip, top, upload_limit, strips, encoder_of(ix))
        finally:
            searching.release()

    @app.post("/api/search")
    def api_search(clip: UploadFile = File(...), top: int = Form(5)):
        """Search an uploaded clip: the same list as `framegram search --json`, or {"error": ...}."""
        try:
            answer = searched(open_index(), clip, top, strips=False)
        except UploadRefused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status)
        return [asdict(m) for m in answer.matches]

    @app.get("/", response_class=HTMLResponse)
    def search_page(request: Request):
        ix = open_index()
        return page(request, "search.html", videos=len(ix), limit_mb=upload_limit / 2**20)

    @app.post("/search", response_class=HTMLResponse)
    def search_results(request: Request, clip: UploadFile = File(...), top: int = Form(5)):
        ix = open_index()
        try:
            answer = searched(ix, clip, top, strips=True)
        except UploadRefused as refused:
            return page(request, "error.html", refused.status, title="This upload cannot be searched",
                        message=refused.message, filename=clip.filename or "")
        numbers = {r: k for k, r in enumerate(ix.ref_ids)}
        rows = [{"match": m, "number": numbers[m.ref_id], "strip": _strip_url(Path(ix.videos[m.ref_id].path), m.ref_start, m.ref_end)}
                for m in answer.matches]
        return page(request, "results.html", filename=clip.filename or "", answer=answer, rows=rows)

    def card_of(ix: VideoIndex, video):
        """The browse card of `video` (made on first view, then cached by content)."""
        return video_card(Path(video.path), video.sha256, encoder_of(ix))

    app.state.describer = None
    if describe:
        ix = open_index()
        encoder = encoder_of(ix)
        app.state.describer = BackgroundDescriber(
            [(ix.videos[r].path, ix.videos[r].sha256) for r in ix.ref_ids],
            lambda path, sha: video_card(path, sha, encoder)).start()

    @app.get("/videos", response_class=HTMLResponse)
    def browse(request: Request, page_number: int = Query(1, alias="page", ge=1)):
        ix = open_index()
        pages = max(1, -(-len(ix) // PAGE_SIZE))
        first = (min(page_number, pages) - 1) * PAGE_SIZE
        rows = [_video_row(k, ix.videos[ix.ref_ids[k]]) for k in range(first, min(first + PAGE_SIZE, len(ix)))]
        return page(request, "videos.html", rows=rows, page_number=min(page_number, pages), pages=pages, total=len(ix))

    @app.get("/videos/{number}", response_class=HTMLResponse)
    def video_page(request: Request, number: int):
        ix = open_index()
        video = video_at(ix, number)
        if video is None:
            return page(request, "error.html", 404, title="No such video", message=f"the index has no video number {number}")
        try:
            card = card_of(ix, video)
        except FramegramError as e:
            return page(request, "error.html", 404, title="This video cannot be shown", message=str(e))
        return page(request, "video.html", video=_video_row(number, video), card=card)

    @app.get("/tags", response_class=HTMLResponse)
    def tag_search(request: Request, q: str = ""):
        """Shots whose tags contain the words of `q`, over the videos described so far."""
        ix = open_index()
        words = q.lower().split()
        hits, described = [], 0
        for k, ref_id in enumerate(ix.ref_ids):
            card = cached_card(ix.videos[ref_id].sha256)
            if card is None:
                continue
            described += 1
            for shot_number, shot in enumerate(card.shots):
                for label, score in shot.tags:
                    if words and all(w in label.lower() for w in words):
                        hits.append({"number": k, "ref_id": ref_id, "shot": shot_number, "start": shot.start, "end": shot.end,
                                     "label": label, "score": score})
        hits.sort(key=lambda h: -h["score"])
        describer = app.state.describer
        return page(request, "tags.html", q=q, hits=hits, described=described, total=len(ix),
                    describing=describer is not None and describer.running)

    @app.get("/catalog/{number}/{image}")
    def catalog_image(number: int, image: str):
        """A browse card's image, by video number and a name from a fixed set."""
        ix = open_index()
        allowed = image in ("picture.png", "thumb.jpg") or (image.startswith("keyframe-") and image.endswith(".jpg")
                                                            and image[9:-4].isdigit())
        video = video_at(ix, number)
        if not allowed or video is None:
            return JSONResponse({"error": "no such image"}, status_code=404)
        try:
            card = card_of(ix, video)
        except FramegramError as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        path = card.image(image)
        return FileResponse(path) if path.is_file() else JSONResponse({"error": "no such image"}, status_code=404)

    @app.get("/media/{number}")
    def media(number: int):
        """An indexed video's file, by its number (HTTP range requests: the player seeks)."""
        video = video_at(open_index(), number)
        if video is None:
            return JSONResponse({"error": f"no video number {number}"}, status_code=404)
        path = Path(video.path)
        if not path.is_file():
            return JSONResponse({"error": "this video's file is no longer where it was indexed"}, status_code=404)
        return FileResponse(path)

    return app


def run_search(index: VideoIndex, clip: UploadFile, top: int, limit: int, strips: bool, encoder=None) -> SearchAnswer:
    """Save the upload privately (refused past `limit` bytes), search it, delete it."""
    if not 1 <= top <= 50:
        raise UploadRefused(400, f"top must be between 1 and 50, got {top}")
    folder = Path(tempfile.mkdtemp(prefix="framegram-upload-"))  # mode 0700: this user's only
    try:
        # the client's name is kept for the page only; the file on disk gets a fixed one
        target = folder / "clip"
        size = 0
        with target.open("wb") as out:
            while chunk := clip.file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(413, f"the upload is larger than the limit of {limit / 2**20:.0f} MB")
                out.write(chunk)
        if size == 0:
            raise UploadRefused(400, "the upload is empty")
        try:
            found = search(target, index, top_k=top, threshold=None, query_id=clip.filename or "clip", encoder=encoder)
        except InputError as e:  # not a video, no video stream, too short, undecodable
            raise UploadRefused(400, f"not a video that can be searched: {e.reason}") from None
        from framegram.io.decode import probe_video
        from framegram.search.query import MAX_QUERY_SECONDS

        threshold = index.fingerprint.threshold
        seconds = probe_video(target).duration or 0.0
        strip = _strip_url(target, 0.0, min(seconds, MAX_QUERY_SECONDS) or None) if strips else None
        return SearchAnswer([m for m in found if m.score >= threshold], found[0].score if found else None,
                            threshold, strip, seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class BodyLimit:
    """Refuses a POST whose body is over `limit` bytes before any of it is stored: by its
    Content-Length (one is required), and by counting what arrives. Starlette would otherwise
    spool the whole multipart body to disk before the upload's own limit is checked."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is None or not length.isdigit():
            return await _refuse(scope, send, 411, "an upload needs a Content-Length")
        if int(length) > self.limit:
            mb = (self.limit - _FORM_MARGIN) / 2**20
            return await _refuse(scope, send, 413, f"the upload is larger than the limit of {mb:.0f} MB")
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > int(length):  # more than announced: stop reading
                return {"type": "http.disconnect"}
            return message

        return await self.app(scope, counted, send)


async def _refuse(scope, send, status: int, message: str) -> None:
    """A plain refusal from the middleware: JSON under /api/, else a short page (fixed text only)."""
    if scope["path"].startswith("/api/"):
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    else:
        body = (f'<!doctype html><meta charset="utf-8"><title>framegram: refused</title><h1>This upload cannot be searched</h1>'
                f'<p class="error">{message}</p><p><a href="/">back to the search</a></p>').encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _video_row(number: int, video) -> dict:
    return {"number": number, "ref_id": video.ref_id, "name": os.path.basename(video.path), "duration": video.duration,
            "added_at": video.added_at}


def _strip_url(path: Path, start: float, end: float | None) -> str | None:
    """A frame strip of [start, end) seconds of `path` as a PNG data: URL (None if unreadable)."""
    import numpy as np
    from PIL import Image

    from framegram.io.decode import sample_strip

    try:
        strip = sample_strip(path, STRIP_FRAMES, 96, start, end)
    except FramegramError:
        return None
    if len(strip.frames) == 0:
        return None
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(list(strip.frames), axis=1)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
