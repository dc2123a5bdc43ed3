"""The grounding agent: for each object of a trace, propose -> segment -> verify -> retry.

An object is tried with the proposal sources in order, each source's attempts in order (a source
may re-prompt), at most `max_attempts` attempts per object. The first attempt that passes the
checks of `synth.grounding.verify` grounds the object. When the answer claims a spatial relation
between two grounded objects and their boxes contradict it, the agent moves those objects on to
their next passing attempts, within the same bound. A trace whose object cannot be grounded, or
whose relation never holds, gets `Reject("ground", reason, detail)` with every attempt in the
detail. Per object it records the proposal source, the retries (attempts beyond the first) and
the mean instance score.

Segmentation results are memoised per image and prompt set, so the k traces of one item that
ground the same annotations cost one decode, and the segmenter adapter reuses the image
embedding across calls on the same image.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import numpy as np

from synth.adapters.base import MaskResult, Prompt, Segmenter
from synth.core.geometry import mask_to_rle
from synth.core.records import Candidate, Instance, ItemRecord, Reject
from synth.core.phrases import same_object
from synth.grounding.proposals import Proposal, ProposalContext, Proposer
from synth.grounding.relations import Claim, parse_claim, relation_holds
from synth.grounding.verify import Failure, Segment, VerifyConfig, check_attempt

log = logging.getLogger(__name__)


class SegmenterFailed(Exception):
    """The segmenter raised on this image; the trace becomes ground/segmenter_error."""


class _ObjectSearch:
    """Walks one object's attempts; `advance()` moves to the next attempt that passes the checks."""

    def __init__(self, agent: GroundingAgent, ctx: ProposalContext, memo: dict[str, list[MaskResult]]) -> None:
        self.agent, self.ctx, self.memo = agent, ctx, memo
        self.attempts = 0
        self.failures: list[str] = []
        self.last_failure: Failure | None = None
        self.kept: list[Segment] | None = None
        self.source = ""
        self._proposals = self._iter_proposals()

    def _iter_proposals(self) -> Iterator[Proposal]:
        for proposer in self.agent.proposers:
            yield from proposer.attempts(self.ctx)

    def advance(self) -> bool:
        """Try attempts until one passes; False when the sources or the bound are spent."""
        image = self.ctx.record.image
        while self.attempts < self.agent.max_attempts:
            proposal = next(self._proposals, None)
            if proposal is None:
                break
            self.attempts += 1
            segments = self.agent.segments(image, proposal, self.memo)
            kept, failure = check_attempt(
                segments, self.ctx.obj.expected_count, self.agent.verify, image.shape[0] * image.shape[1]
            )
            if failure is None:
                self.kept, self.source = kept, proposal.source
                return True
            self.last_failure = failure
            self.failures.append(f"{proposal.source}/{proposal.note}: {failure.detail}")
        if self.attempts == 0 and self.kept is None and self.ctx.obj.expected_count == 0:
            # Nothing to point at and nothing expected: "there are no dogs" is grounded as is.
            self.kept, self.source, self.attempts = [], "none", 1
            return True
        return False

    def reject(self) -> Reject:
        """Why the object could not be grounded, with every attempt in the detail."""
        phrase = self.ctx.obj.phrase
        if self.attempts == 0:
            return Reject("ground", "no_proposals", f"{phrase!r}: no proposal source gave prompts")
        reason = self.last_failure.reason if self.last_failure else "count_mismatch"
        return Reject("ground", reason, f"{phrase!r}: " + "; ".join(self.failures))

    def boxes(self) -> np.ndarray:
        return np.array([s.box for s in self.kept or [] if s.box is not None], dtype=np.float64).reshape(-1, 4)

    def commit(self) -> None:
        """Write the accepted instances and their bookkeeping into the object."""
        obj, kept = self.ctx.obj, self.kept or []
        obj.instances = [
            Instance(mask=mask_to_rle(s.mask), box=[float(v) for v in s.box or ()], point=[], score=s.score)
            for s in kept
        ]
        obj.proposal_source = self.source
        obj.retries = max(self.attempts - 1, 0)
        obj.score = float(np.mean([s.score for s in kept])) if kept else 0.0


class GroundingAgent:
    """Grounds every live trace of a record in place (see module docstring).

    Args:
        segmenter: set up by the caller (the stage's `setup()`).
        proposers: proposal sources in order of preference.
        verify: thresholds of the checks.
        max_attempts: attempts per object, the first included (retries = max_attempts - 1).
    """

    def __init__(self, segmenter: Segmenter, proposers: list[Proposer], verify: VerifyConfig, max_attempts: int):
        self.segmenter, self.proposers, self.verify, self.max_attempts = segmenter, proposers, verify, max_attempts

    def ground_record(self, record: ItemRecord) -> None:
        """Ground each live candidate of `record`; failures become candidate rejects."""
        memo: dict[str, list[MaskResult]] = {}
        for candidate in record.live_candidates():
            try:
                candidate.reject = self._ground_candidate(record, candidate, memo)
            except SegmenterFailed as err:
                candidate.reject = Reject("ground", "segmenter_error", str(err))

    def _ground_candidate(self, record: ItemRecord, candidate: Candidate, memo: dict) -> Reject | None:
        searches = [_ObjectSearch(self, ProposalContext(record, candidate, o), memo) for o in candidate.objects]
        for search in searches:
            if not search.advance():
                return search.reject()
        pair = self._claimed_pair(record, candidate, searches)
        while pair is not None:
            claim, a, b = pair
            if all(len(s.kept or []) for s in (a, b)) and relation_holds(claim.relation, a.boxes(), b.boxes()) == claim.holds:
                break
            if not (a.advance() or b.advance()):
                verb = "is" if claim.holds else "is not"
                detail = f"answer says {claim.subject!r} {verb} {claim.relation} of {claim.reference!r}; boxes disagree"
                return Reject("ground", "relation_mismatch", detail)
        for search in searches:
            search.commit()
        return None

    def _claimed_pair(
        self, record: ItemRecord, candidate: Candidate, searches: list[_ObjectSearch]
    ) -> tuple[Claim, _ObjectSearch, _ObjectSearch] | None:
        """(claim, subject search, reference search) when the answer claims a checkable relation."""
        if not self.verify.check_relation:
            return None
        claim = parse_claim(record.item.question, record.item.answer)
        if claim is None:
            return None
        subject = _find(claim.subject, searches)
        reference = _find(claim.reference, searches)
        if subject is None or reference is None or subject is reference:
            log.debug("relation %s: objects not both among %s", claim, [o.phrase for o in candidate.objects])
            return None
        return claim, subject, reference

    def segments(self, image: np.ndarray, proposal: Proposal, memo: dict[str, list[MaskResult]]) -> list[Segment]:
        """The instances of one proposal: its own masks, or the segmenter's (memoised)."""
        results = proposal.results
        if results is None:
            key = _prompts_key(proposal.prompts)
            if key not in memo:
                try:
                    memo[key] = self.segmenter.segment(image, proposal.prompts) if proposal.prompts else []
                except (RuntimeError, ValueError) as err:
                    log.warning("segmenter failed: %s", err, exc_info=True)
                    raise SegmenterFailed(f"{type(err).__name__}: {err}") from err
            results = memo[key]
        anchors = [_anchor(p) for p in proposal.prompts] if proposal.results is None else [None] * len(results)
        return [Segment(mask=r.mask, score=float(r.score), anchor=a) for r, a in zip(results, anchors)]


def _find(phrase: str, searches: list[_ObjectSearch]) -> _ObjectSearch | None:
    hits = [s for s in searches if same_object(s.ctx.obj.phrase, phrase)]
    return hits[0] if len(hits) == 1 else None


def _anchor(prompt: Prompt) -> tuple[float, float] | None:
    """The prompt's first positive point, the evidence of where its object is."""
    if prompt.points is None:
        return None
    points = np.asarray(prompt.points, dtype=np.float64).reshape(-1, 2)
    labels = np.ones(len(points)) if prompt.labels is None else np.asarray(prompt.labels)
    positive = points[labels == 1]
    return (float(positive[0, 0]), float(positive[0, 1])) if len(positive) else None


def _prompts_key(prompts: list[Prompt]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in prompts:
        for part in (p.points, p.labels, p.box):
            h.update(b"|" if part is None else np.ascontiguousarray(part, dtype=np.float64).tobytes())
        h.update(b";")
    return h.hexdigest()
