"""Neutrality check for reminder template text (product invariant 7).

The term lists and the affix, negation and whitelist rules live in ``neutrality_terms.yaml``;
this module only compiles them. A ``link`` finding refuses the template outright; every other
family is a finding that needs human review and an audited override.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, cast, get_args

import yaml

Family = Literal["link", "coercion", "steering", "proof", "phishing", "privacy", "completion"]
# Families of the template check; "completion" exists for staff labels only.
FAMILIES: tuple[Family, ...] = ("link", "coercion", "steering", "proof", "phishing", "privacy")
# Template families whose findings also make a staff label unacceptable.
LABEL_FAMILIES: frozenset[Family] = frozenset({"link", "steering", "proof"})

_TERMS_FILE = "neutrality_terms.yaml"
_WORD = re.compile(r"\w+")
_CLAUSE_END = re.compile(r"[.,;:!?\n]")
_URL = re.compile(r"(?<!\w)(?P<scheme>https?(?=://)|www(?=\.))\S+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]}'\""


@dataclass(frozen=True, slots=True)
class Finding:
    """One flagged term: its family, the YAML entry that matched and where it sits in the body."""

    family: Family
    term: str
    start: int
    end: int
    matched: str


@dataclass(frozen=True, slots=True)
class NeutralityReport:
    """Findings for one template body, ordered by position."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """True when the body contains a link and can never be used."""
        return any(f.family == "link" for f in self.findings)

    @property
    def needs_review(self) -> bool:
        """True when the body has non-link findings that need an audited override."""
        return any(f.family != "link" for f in self.findings)

    @property
    def is_clean(self) -> bool:
        """True when nothing at all was found."""
        return not self.findings


@dataclass(frozen=True, slots=True)
class _Rule:
    family: Family
    term: str
    pattern: re.Pattern[str]
    # Lower-case text every match contains: without it in a text, the rule cannot match.
    core: str


@dataclass(frozen=True, slots=True)
class _Config:
    rules: tuple[_Rule, ...]
    domain: re.Pattern[str]
    tld_terms: Mapping[str, str]
    ignore_words: frozenset[str]
    negators: Mapping[str, frozenset[str]]
    fillers: frozenset[str]
    max_fillers: int
    safe_phrases: tuple[re.Pattern[str], ...]
    label_rules: tuple[_Rule, ...]  # every rule a label is checked against
    # The cores of label_rules: an import checks every row's label and almost all are clean,
    # so plain substring tests rule out most rules before any regex runs.
    label_cores: tuple[tuple[str, _Rule], ...]


def check_text(body: str) -> NeutralityReport:
    """Check a template body for links and for coercive, steering or unsafe wording."""
    cfg = _config()
    raw = [*_link_findings(body, cfg), *_term_findings(body, cfg)]
    covered = [(f.start, f.end) for f in raw if f.family != "link"]
    safe_spans = [m.span() for p in cfg.safe_phrases for m in p.finditer(body)]
    kept = [
        f
        for f in raw
        if f.family == "link"
        or not (
            any(s <= f.start and f.end <= e for s, e in safe_spans)
            or _is_negated(body, f, covered, cfg)
        )
    ]
    return NeutralityReport(findings=_drop_contained(kept))


def check_label(label: str) -> list[Finding]:
    """What makes a staff label a survey note: links, completion, answer or pressure words."""
    cfg = _config()
    lowered = label.lower()
    candidates = [rule for core, rule in cfg.label_cores if core in lowered]
    found = [*_link_findings(label, cfg), *_rule_findings(label, candidates)]
    return _drop_contained([f for f in found if f.matched.lower() not in cfg.ignore_words])


def _link_findings(body: str, cfg: _Config) -> Iterable[Finding]:
    for m in _URL.finditer(body):
        end = m.start() + len(m.group().rstrip(_TRAILING_PUNCT))
        yield Finding("link", m.group("scheme").lower(), m.start(), end, body[m.start() : end])
    for m in cfg.domain.finditer(body):
        end = m.start() + len(m.group().rstrip(_TRAILING_PUNCT))
        term = cfg.tld_terms[m.group("tld").lower()]
        yield Finding("link", term, m.start(), end, body[m.start() : end])


def _term_findings(body: str, cfg: _Config) -> Iterable[Finding]:
    for finding in _rule_findings(body, cfg.rules):
        if finding.matched.lower() not in cfg.ignore_words:
            yield finding


def _rule_findings(body: str, rules: Iterable[_Rule]) -> Iterable[Finding]:
    for rule in rules:
        for m in rule.pattern.finditer(body):
            yield Finding(rule.family, rule.term, m.start(), m.end(), m.group())


def _is_negated(body: str, finding: Finding, covered: list[tuple[int, int]], cfg: _Config) -> bool:
    """Whether a negator precedes the finding in its clause with only fillers in between."""
    clause_start = 0
    for m in _CLAUSE_END.finditer(body, 0, finding.start):
        clause_start = m.end()
    negators = cfg.negators.get("all", frozenset()) | cfg.negators.get(finding.family, frozenset())
    fillers_used = 0
    for m in reversed(list(_WORD.finditer(body, clause_start, finding.start))):
        # Words inside another finding are skipped so "tidak ada sanksi atau hukuman" works.
        if any(s <= m.start() and m.end() <= e for s, e in covered):
            continue
        word = m.group().lower()
        if word in negators:
            return True
        if word in cfg.fillers and fillers_used < cfg.max_fillers:
            fillers_used += 1
            continue
        return False
    return False


def _drop_contained(findings: list[Finding]) -> list[Finding]:
    """Keep the longest of nested same-family hits ("beri nilai tinggi" over "nilai tinggi")."""
    ordered = sorted(findings, key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Finding] = []
    for f in ordered:
        if not any(k.family == f.family and k.start <= f.start and f.end <= k.end for k in kept):
            kept.append(f)
    return kept


@cache
def _config() -> _Config:
    text = resources.files("app.templates").joinpath(_TERMS_FILE).read_text(encoding="utf-8")
    return _compile(yaml.safe_load(text))


def _compile(data: Mapping[str, Any]) -> _Config:
    affixes = data["affixes"]
    rules = _compile_families(data["families"], affixes, allowed=FAMILIES)
    label_only = _compile_families(data.get("label_only", {}), affixes, allowed=get_args(Family))

    tlds: list[str] = data["link"]["tlds"]
    tld_terms = {t.lstrip(".").lower(): t for t in tlds}
    tld_alt = "|".join(re.escape(t) for t in sorted(tld_terms, key=len, reverse=True))
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    domain = re.compile(
        rf"(?<![\w.-])(?:{label}\.)+(?P<tld>{tld_alt})(?![\w-])(?:[/?#]\S*)?", re.IGNORECASE
    )

    negation = data["negation"]
    label_rules = (*(r for r in rules if r.family in LABEL_FAMILIES), *label_only)
    return _Config(
        rules=rules,
        domain=domain,
        tld_terms=tld_terms,
        ignore_words=frozenset(w.lower() for w in data.get("ignore_words", [])),
        negators={k: frozenset(w.lower() for w in v) for k, v in negation["negators"].items()},
        fillers=frozenset(w.lower() for w in negation["fillers"]),
        max_fillers=int(negation["max_fillers"]),
        safe_phrases=tuple(_compile_phrase(p) for p in data.get("safe_phrases", [])),
        label_rules=label_rules,
        label_cores=tuple((r.core, r) for r in label_rules),
    )


def _compile_families(
    families: Mapping[str, Any], affixes: Mapping[str, Any], *, allowed: tuple[str, ...]
) -> tuple[_Rule, ...]:
    rules: list[_Rule] = []
    for family, entries in families.items():
        if family not in allowed:
            raise ValueError(f"{_TERMS_FILE}: unknown family {family!r}")
        fam = cast(Family, family)
        for stem in entries.get("stems", []):
            # A nasal form replaces the stem's first letter; the rest is in every match.
            core = stem[1:] if len(stem) > 1 else stem
            rules.append(_Rule(fam, stem, _compile_stem(stem, affixes), core.lower()))
        for phrase in [*entries.get("words", []), *map(str, entries.get("phrases", []))]:
            core = max(phrase.split(), key=len)
            rules.append(_Rule(fam, phrase, _compile_phrase(phrase), core.lower()))
    return tuple(rules)


def _alternation(options: Iterable[str]) -> str:
    # Longest first so the regex engine tries "meng" before "me".
    return "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))


def _compile_stem(stem: str, affixes: Mapping[str, Any]) -> re.Pattern[str]:
    """Compile one stem into prefix{0,n} + (stem | nasal form) + suffix{0,m}, whole word."""
    prefixes = f"(?:{_alternation(affixes['prefixes'])}){{0,{int(affixes['max_prefixes'])}}}"
    suffixes = f"(?:{_alternation(affixes['suffixes'])}){{0,{int(affixes['max_suffixes'])}}}"
    forms = [re.escape(stem)]
    nasal = affixes.get("nasal", {}).get(stem[:1].lower())
    if nasal and len(stem) > 1:
        forms.append(f"(?:{_alternation(nasal)}){re.escape(stem[1:])}")
    return re.compile(rf"(?<!\w){prefixes}(?:{'|'.join(forms)}){suffixes}(?!\w)", re.IGNORECASE)


def _compile_phrase(phrase: str) -> re.Pattern[str]:
    """Compile a literal word sequence with flexible whitespace and whole-word edges."""
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    head = r"(?<!\w)" if re.match(r"\w", phrase) else ""
    tail = r"(?!\w)" if re.search(r"\w$", phrase) else ""
    return re.compile(f"{head}{body}{tail}", re.IGNORECASE)
