"""Generated tokens → text, streamed as it is produced.

Why a class of its own: a token's bytes may end in the middle of a UTF-8 sequence, and a stop string may
arrive split over several tokens; the stream holds back just enough text that neither a broken character
nor the start of a stop string ever reaches the editor.
"""

from __future__ import annotations

import codecs

from engine.model.backend import GenerationRequest


class TextStream:
    """The text of one generation; ``request.on_text`` receives it piece by piece."""

    def __init__(self, request: GenerationRequest) -> None:
        self.ids: list[int] = []
        self.text = ""
        self.streamed = 0
        self.first_token_ms = 0.0
        self.draft_tokens = 0  # prompt-lookup tokens proposed / accepted (``LlamaBackend``)
        self.accepted_draft_tokens = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = request.stop_strings
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._on_text = request.on_text

    def add(self, token: int, data: bytes) -> bool:
        """Append a token; True when a stop string has appeared."""
        self.ids.append(token)
        piece = self._decoder.decode(data)
        if not piece:
            return False
        self.text += piece
        window = self.text[max(0, len(self.text) - len(piece) - self._hold):]
        if any(s in window for s in self._stops):
            return True
        self._emit(len(self.text) - self._hold)
        return False

    def _emit(self, upto: int) -> None:
        if self._on_text is not None and upto > self.streamed:
            self._on_text(self.text[self.streamed:upto])
            self.streamed = upto

    def finish(self) -> tuple[str, bool]:
        """Final text (cut at the first stop string) and whether a stop string cut it."""
        text = self.text + self._decoder.decode(b"", final=True)
        cut = False
        for stop in self._stops:
            at = text.find(stop)
            if at >= 0:
                text, cut = text[:at], True
        self.text = text
        self._emit(len(text))
        return text, cut
