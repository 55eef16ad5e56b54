"""The recommendation's rationale: the evidence (:class:`~archsearch.recommend.evidence.
Evidence`) in plain sentences, kept apart from the arithmetic of ``combine.py``."""

from __future__ import annotations

import math

from archsearch.recommend.evidence import DataTrust, Evidence, FamilyRank
from archsearch.recommend.portfolio import Portfolio
from archsearch.recommend.ranker import Neighbour, PastEvidence
from archsearch.recommend.similarity import MAX_NEIGHBOUR_DISTANCE
from archsearch.store.records import TrialRecord

# A cheaper point on the Pareto front is worth naming when its quality is within this share of
# the measured range and its latency is at least CHEAPER_FACTOR times lower.
NEAR_EQUAL, CHEAPER_FACTOR = 0.05, 1.5


def _fmt_past(past: PastEvidence, ranking: list[FamilyRank]) -> str:
    return ", ".join(f"{r.family} {past.scores[r.family]:.2f}"
                     for r in sorted(ranking, key=lambda r: -(r.past or 0.0))
                     if r.family in past.scores)


def _trust_sentence(trust: DataTrust) -> str:
    if not trust.n_tasks:
        return ("Trust in past data: not calibrated (no past task could be held out and "
                f"predicted from the others); weight x{trust.factor:g}.")
    rules_only = trust.regret[0.0]
    held_out = (f"{trust.n_tasks} past tasks, each predicted from the others, had mean regret "
                f"{rules_only:.3f} with the rules alone (0 = always the best family)")
    if trust.factor == 0.0:
        best = min((f for f in trust.regret if f), key=lambda f: trust.regret[f])
        return (f"Trust in past data: none. {held_out[0].upper()}{held_out[1:]}; no weight on "
                f"past data did clearly better (its best, x{best:g}, {trust.regret[best]:.3f}), "
                "so the rules set the prior.")
    return (f"Trust in past data: weight x{trust.factor:g}. {held_out[0].upper()}"
            f"{held_out[1:]}, and {trust.regret[trust.factor]:.3f} with past data at this "
            "weight.")


def rationale(e: Evidence) -> list[str]:
    """The recommendation's reasons, in order: rules, past tasks, constraints, this task's
    measurements, the Pareto front and the stability across seeds, exclusions."""
    sentences = [f"Rule {rule.id}: {rule.says}" for rule in e.priors.fired]
    if not e.priors.fired:
        sentences.append("No rule of thumb applies to this data set; the choice rests on "
                         "measurement alone.")
    sentences += _past_sentences(e)
    sentences += _constraint_sentences(e)
    if e.best is None:
        sentences += _unmeasured_sentences(e)
    else:
        sentences += _measured_sentences(e, e.best)
        sentences += _front_sentences(e, e.best)
        sentences.append(_stability_sentence(e))
    sentences += [f"{rank.family} was excluded by rule {rank.excluded_by}."
                  for rank in e.ranking if rank.excluded_by]
    return sentences


def _allowed(e: Evidence) -> list[FamilyRank]:
    return [r for r in e.ranking if r.excluded_by is None] or e.ranking


def _belief_top(e: Evidence) -> FamilyRank:
    """The family the prior belief (rules and past data) favours."""
    return max(_allowed(e), key=lambda r: e.belief[r.family])


def _past_sentences(e: Evidence) -> list[str]:
    past = e.past
    if past is None:
        return []
    if not past.available:
        corpus = f" and {past.n_corpus} in the knowledge base" if past.n_corpus else ""
        if past.nearest is not None:
            return [f"Past tasks: {past.n_tasks - past.n_corpus} in the database{corpus}, the "
                    f"nearest {past.nearest:.2f} away by meta-features, beyond "
                    f"{MAX_NEIGHBOUR_DISTANCE:g}: none is similar enough to predict from, so "
                    "the rules set the prior."]
        return [f"Past tasks: {past.n_tasks - past.n_corpus} usable in the database{corpus} "
                "(at least 2 tasks that measured two or more families are needed); the ranker "
                "has no data, so the rules set the prior."]
    near = "; ".join(f"{n.dataset_name} ({_origin(n)}, best {n.best_family}, distance "
                     f"{n.distance:.2f})" for n in past.neighbours)
    learned = f"{past.n_tasks - past.n_corpus} earlier searches"
    if past.n_corpus:
        learned += f" and {past.n_corpus} corpus tasks of the knowledge base"
    sentences = [f"Past tasks: learned from {learned}; the nearest by meta-features are "
                 f"{near}. They predict {_fmt_past(past, e.ranking)} (1 = the best family on a "
                 "similar task, 0 = the worst)."]
    if past.knowledge:
        sentences.append(past.knowledge)
    if e.trust is not None:
        sentences.append(_trust_sentence(e.trust))
    rules_top = max(_allowed(e), key=lambda r: r.prior)
    belief_top = _belief_top(e)
    tied = e.belief[belief_top.family] - e.belief[rules_top.family] < 1e-9
    if belief_top.family != rules_top.family and not tied and rules_top.prior > 1.0:
        sentences.append(f"Past data overrode the rules: the rules alone favour "
                         f"{rules_top.family} (prior x{rules_top.prior:.2g}); with past tasks "
                         f"the prior favours {belief_top.family}.")
    elif rules_top.prior > 1.0:
        sentences.append(f"Past data agrees with the rules, which favour {belief_top.family}.")
    if past.same_data:
        runs = ", ".join(f"task {task} (seed {seed}): {winner}"
                         for task, seed, winner in past.same_data)
        sentences.append(f"Earlier searches of the same data set: {runs}.")
    return sentences


def knowledge_verdict(predicted: str, picked: str, past: PastEvidence,
                      portfolio: Portfolio | None = None) -> str | None:
    """What the instant recommendation (rules and past tasks, the knowledge base among them;
    led by ``portfolio`` when it was used) predicted before a search, and whether the search's
    pick agreed; None when the knowledge base was not consulted."""
    if not past.n_corpus:
        return None
    if portfolio is not None and portfolio.used:
        source = (f"the zero-shot portfolio of {portfolio.n_tasks} past task(s) weighted by "
                  f"similarity, the knowledge base's {past.n_corpus} measured corpus task(s) "
                  "among them")
    else:
        used = ("learned from" if past.available else
                "none near enough to learn from, so the rules decided; it holds"
                if past.nearest is not None else
                "too few to learn from, so the rules decided; it holds")
        source = (f"the rules, and the knowledge base: {used} {past.n_corpus} measured corpus "
                  "task(s)")
    verdict = ("the search agreed" if predicted == picked
               else f"the search picked {picked} instead")
    return (f"Before the search, the instant recommendation predicted {predicted} ({source}); "
            f"{verdict}.")


def initial_design_sentence(portfolio: Portfolio) -> str:
    """Which order a search's initial design (one trial per family) follows, and why: the
    zero-shot portfolio of past tasks first (then the prior's order), or the instant
    recommendation's order alone (the prior's: no portfolio)."""
    if portfolio.used:
        rest = [f for f in portfolio.order if f not in portfolio.families]
        name, distance = portfolio.neighbours[0]
        return (f"Initial design: one trial per family at its defaults, the zero-shot portfolio "
                f"of past tasks first: {', '.join(portfolio.families)} (chosen greedily over "
                f"{portfolio.n_tasks} past task(s) weighted by similarity, the nearest {name} at "
                f"{distance:.2f}; weighted mean regret {portfolio.regret[-1]:.3f}), then the "
                f"prior's order (rules and past tasks): {', '.join(rest)}.")
    if portfolio.neighbours:
        name, distance = portfolio.neighbours[0]
        why = (f"the nearest of {portfolio.n_tasks} past task(s), {name}, is {distance:.2f} "
               f"away, beyond {MAX_NEIGHBOUR_DISTANCE:g}")
    else:
        why = "no past task measured two or more of its families"
    return (f"Initial design: one trial per family at its defaults, in the order of the instant "
            f"recommendation (no portfolio: {why}): {', '.join(portfolio.order)}.")


def _origin(neighbour: Neighbour) -> str:
    return "corpus" if neighbour.task_id is None else f"task {neighbour.task_id}"


def _constraint_sentences(e: Evidence) -> list[str]:
    if not e.limits:
        return []
    named = ", ".join(f"{k}={v:g}" for k, v in e.limits.items())
    n_broken = len(e.completed) - len(e.feasible)
    return [f"Constraints {named}: {len(e.feasible)} of {len(e.completed)} completed trials "
            "meet them" + (f"; {n_broken} that break them cannot be picked." if n_broken
                           else ".")]


def _unmeasured_sentences(e: Evidence) -> list[str]:
    top = e.ranking[0]
    if e.completed and not e.feasible:
        sentences = ["No measured trial meets the constraints: the pick below is the prior's, "
                     "to be checked by a search with a looser budget or a smaller space."]
    elif e.portfolio is not None:
        sentences = [_portfolio_pick_sentence(e, e.portfolio)]
    else:
        sources = "rules" + (" and past tasks" if e.past and e.past.available else "")
        sentences = [f"No trial has been measured yet: {top.family} is the prior's choice "
                     f"({sources}), to be checked by a search."]
    if e.config_source:
        sentences.append(f"Suggested configuration: {top.family}'s best on the nearest past "
                         f"task that measured it ({e.config_source}).")
    return sentences


def _portfolio_pick_sentence(e: Evidence, portfolio: Portfolio) -> str:
    top = e.ranking[0]
    name, distance = portfolio.neighbours[0]
    belief_top = _belief_top(e)
    prior = ("; the prior alone agrees" if belief_top.family == top.family else
             f"; the prior alone (rules and the ranker) favours {belief_top.family}")
    return (f"No trial has been measured yet: {top.family} leads the zero-shot portfolio of "
            f"{portfolio.n_tasks} past task(s) weighted by similarity (the nearest {name} at "
            f"{distance:.2f}), the best family on a weighted {portfolio.win_share:.0%} of them"
            f"{prior}; to be checked by a search.")


def _measured_sentences(e: Evidence, best: TrialRecord) -> list[str]:
    top, metric = e.ranking[0], e.metric
    runner = next((r for r in e.ranking[1:] if r.measured is not None
                   and r.excluded_by is None), None)
    # The prior breaks near-ties (combine.PRIOR_SCALE): the runner-up may have measured better.
    ahead = runner is not None and metric.better(runner.measured, best.val_score)
    sentences = [
        f"{top.family} reached {'a' if ahead else 'the best'} validation {metric.name} "
        f"({best.val_score:.4g}) in trial {best.number}; {top.n_trials} of the "
        f"{len(e.feasible)} {'feasible' if e.limits else 'completed'} trials are "
        f"{top.family}."]
    if runner is not None:
        gap = abs(best.val_score - runner.measured)
        share = abs(metric.utility(best.val_score) - metric.utility(runner.measured)) / e.spread
        relative = gap / abs(best.val_score) if best.val_score else math.inf
        why = ("below the cross-validated pick" if top.cross_validated
               and not runner.cross_validated else "ranked second by the prior belief (a "
               "near-tie)")
        where = f"ahead on validation, {why}" if ahead else "behind"
        sentences.append(f"Runner-up: {runner.family} at {runner.measured:.4g} "
                         f"({runner.n_trials} trial(s)), {gap:.3g} {where} ({relative:.1%}; "
                         f"{share:.0%} of the measured range).")
    favoured = max(e.ranking, key=lambda r: r.prior)
    if favoured.prior > 1.0 and favoured.family != top.family:
        outcome = (f"measured {favoured.measured:.4g}" if favoured.measured is not None
                   else "was not measured")
        sentences.append(f"The rules favoured {favoured.family} (prior x{favoured.prior:.2g}); "
                         f"measurement overrode them: it {outcome}.")
    elif favoured.prior > 1.0:
        sentences.append(f"Measurement agrees with the rules, which favoured {top.family}.")
    belief_top = _belief_top(e)
    if (e.past is not None and e.past.available and belief_top.family != top.family
            and belief_top.family != favoured.family):
        sentences.append(f"Past tasks favoured {belief_top.family}; measurement on this task "
                         "overrode them.")
    return sentences


def _front_sentences(e: Evidence, best: TrialRecord) -> list[str]:
    if not e.front:
        return []
    metric = e.metric
    numbers = ", ".join(str(t.number) for t in sorted(e.front, key=lambda t: t.number))
    sentences = [f"Pareto front{' under the constraints' if e.limits else ''} (quality vs "
                 f"latency and parameters): trial(s) {numbers}; the pick, trial {best.number}, "
                 "is its best-quality point."]
    cheaper = [t for t in e.front if t.number != best.number and t.latency_ms
               and best.latency_ms and best.latency_ms / t.latency_ms >= CHEAPER_FACTOR
               and abs(metric.utility(best.val_score) - metric.utility(t.val_score))
               / e.spread <= NEAR_EQUAL]
    if cheaper:
        alt = min(cheaper, key=lambda t: t.latency_ms)
        sentences.append(f"A cheaper near-equal alternative: trial {alt.number} "
                         f"({alt.family}), {best.latency_ms / alt.latency_ms:.1f}x lower "
                         f"latency at {metric.name} {alt.val_score:.4g}.")
    return sentences


def _stability_sentence(e: Evidence) -> str:
    s = e.stability
    if s is None:
        return ("Stability across seeds: not measured (the chosen configuration was trained "
                "once).")
    return (f"Stability across seeds: the chosen configuration was trained {s['n']} times "
            f"(trials {', '.join(map(str, s['trials']))}): validation {e.metric.name} "
            f"{s['min']:.4g} to {s['max']:.4g} (std {s['std']:.2g}, {s['range_share']:.0%} of "
            "the measured range).")
