"""Prompt lookup: draft tokens for exact speculative decoding, copied from the row's own text.

Saxena (2023), "Prompt Lookup Decoding" (Hugging Face ``generate(prompt_lookup_num_tokens=...)``):
few-shot prompts and the answers they ask for repeat each other (a Text2Cypher query copies the
schema's labels and the examples' patterns), so the tokens that followed the latest earlier
occurrence of the row's last n tokens are a good guess at what comes next. The decoder checks
every guess in one pass (``measure.generate``) and keeps only the tokens greedy decoding itself
gives, so the output never changes; only the number of decoding steps does.

``PromptLookup(tokens)`` indexes each n-gram (n = 1 .. ``NGRAM``) of a row by where its latest
occurrence ended; ``add`` extends the row, ``draft(k)`` returns up to ``k`` tokens, matching the
longest n-gram first. ``DraftSchedule`` sets how many tokens each row drafts: more after a draft
taken whole, fewer after a miss, none where drafts keep missing.
"""

from __future__ import annotations

NGRAM = 3  # longest suffix matched against the row's earlier text
DRAFT_MAX = 4  # most draft tokens per row and step (each costs a body and an unembedding position)


class PromptLookup:
    """One row's tokens with, per n-gram, the index just after its latest occurrence that has a successor."""

    def __init__(self, tokens: list[int]):
        self.tokens: list[int] = []
        self.after: dict[tuple[int, ...], int] = {}
        self.add(tokens)

    def add(self, tokens: list[int]) -> None:
        for t in tokens:
            p = len(self.tokens)  # t goes to index p: each n-gram ending at p - 1 now has a successor
            for n in range(1, min(NGRAM, p) + 1):
                self.after[tuple(self.tokens[p - n : p])] = p
            self.tokens.append(t)

    def draft(self, k: int) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the longest matching suffix."""
        if k < 1:
            return []
        for n in range(min(NGRAM, len(self.tokens)), 0, -1):
            at = self.after.get(tuple(self.tokens[-n:]))
            if at is not None:
                return self.tokens[at : at + k]
        return []


class DraftSchedule:
    """How many tokens each row of a call drafts next (a draft costs a body and an unembedding position
    whether it is taken or not, so drafting stays where it pays).

    A row starts at one token and drafts one more after each draft taken whole (up to ``most``);
    after a miss it drafts what was taken (at least one), and nothing more after ``MISSES`` misses
    in a row that took nothing. The whole call stops drafting once ``PROBE`` tokens are drafted and
    fewer than ``MIN_TAKEN`` of them were taken (prompts whose answers do not copy from them).
    """

    MISSES = 2
    PROBE = 16
    MIN_TAKEN = 0.25

    def __init__(self, most: int = DRAFT_MAX):
        self.most, self.drafted, self.accepted = most, 0, 0
        self.next: dict[int, int] = {}
        self.misses: dict[int, int] = {}

    def length(self, row: int) -> int:
        if self.drafted >= self.PROBE and self.accepted < self.MIN_TAKEN * self.drafted:
            return 0
        return min(self.most, self.next.get(row, 1))

    def taken(self, row: int, drafted: int, accepted: int) -> None:
        if not drafted:
            return
        self.drafted, self.accepted = self.drafted + drafted, self.accepted + accepted
        if accepted == drafted:
            self.next[row], self.misses[row] = drafted + 1, 0
            return
        self.misses[row] = self.misses.get(row, 0) + 1 if accepted == 0 else 0
        self.next[row] = 0 if self.misses[row] >= self.MISSES else max(accepted, 1)
