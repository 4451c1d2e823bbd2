"""The component schemas of the OpenAPI document (:mod:`service.api.openapi`)."""
from __future__ import annotations


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


_NUM = {"type": "number"}
_INT = {"type": "integer"}
_OPT_INT = {"type": ["integer", "null"]}
_OPT_BOOL = {"type": ["boolean", "null"]}
_OPT_NUM = {"type": ["number", "null"]}
_SLOT_ID = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "figures": {"description": "a gate refusal: what it was judged on"},
                       "gate": {"description": "a gate refusal: the rules missed"}}}}},
    "Action": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "minLength": 1},
        "features": {"type": "object", "description": "namespace -> {name: value}"}}},
    "RankRequest": {"type": "object", "additionalProperties": False, "properties": {
        "context": {"type": "object", "description": "namespace -> {name: value}; optional"},
        "actions": {"type": "array", "minItems": 1,
                    "items": {"oneOf": [_ref("Action"), {"type": "string"}]},
                    "description": "omitted for a loop with fixed actions"},
        "event_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"},
        "defer": {"type": "boolean", "description": "learn only after /activate"},
        "exclude": {"type": "array", "items": {"type": "string"}},
        "k": {"type": "integer", "minimum": 1, "description": "length of the ranking returned"},
        "session_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$",
                       "description": "sequential loops only (required there)"},
        "slots": {"type": "array", "minItems": 1, "maxItems": 50, "items": _ref("Slot"),
                  "description": "a multi-slot decision's slots, in order (replace the loop's)"},
        "explain": {"oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 1, "maximum": 1000}],
                    "description": "true or N: explain each returned action (N contributions, "
                                   "default 10)"}}},
    "Slot": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
        "id": _SLOT_ID, "features": {"type": "object", "description": "namespace -> {name: value}"},
        "actions": {"type": "array", "minItems": 1, "items": {"type": "string"},
                    "description": "the candidate ids this slot may show"}}},
    "SlotDecision": {"type": "object", "required": ["id", "chosen", "probability"], "properties": {
        "id": {"type": "string"}, "chosen": {"type": "string"},
        "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                        "description": "conditional on the earlier slots' choices"},
        "ranking": {"type": "array", "description": "with k: the slot's top k"},
        "explanation": _ref("Explanation")}},
    "ModelExplanation": {"type": "object", "required": ["version", "policy", "summary", "recent"], "properties": {
        "version": _INT, "decisions_read": _INT, "decisions_refused": _INT,
        "policy": {"type": ["string", "null"]},
        "reason": {"type": "string"},
        "recent": {"type": ["object", "null"], "description": "the latest single decision of the log, "
                   "decided and explained again by this version (actions best first)"},
        "summary": {"type": ["object", "null"], "properties": {
            "model": {"enum": ["shared", "disjoint"]}, "events": _INT,
            "global": {"type": "array", "items": _ref("WeightRow")},
            "actions": {"type": "object", "additionalProperties": {
                "type": "array", "items": _ref("WeightRow")}}}}}},
    "WeightRow": {"type": "object", "required": ["bucket", "kind", "bucket_weight", "std", "features", "more"],
                  "properties": {"bucket": _INT, "kind": {"type": "string"}, "bucket_weight": _NUM,
                                 "std": {"type": "number", "description": "√(A⁻¹)ⱼⱼ, in units of the "
                                                                          "reward noise"},
                                 "features": {"type": "array", "description": "names seen in the bucket, "
                                              "each with its own weight (the bucket's × its hash sign)",
                                              "items": {"type": "object", "required": ["name", "weight"],
                                                        "properties": {"name": {"type": "string"},
                                                                       "weight": _NUM}}},
                                 "more": _INT}},
    "Explanation": {"type": "object", "required": ["actions"], "properties": {
        "actions": {"type": ["array", "null"], "description": "null: the policy cannot explain",
                    "items": {"type": "object", "required": [
                        "id", "mean", "intercept", "features", "rest", "bonus", "score", "probability"],
                        "properties": {"id": {"type": "string"}, "mean": _NUM, "intercept": _NUM,
                                       "rest": _NUM, "bonus": _NUM, "score": _NUM,
                                       "features": {"type": "array", "items": {"type": "object"}},
                                       "probability": {"type": "object"}}}},
        "reason": {"type": "string"}, "drift_floor": _NUM,
        "method": {"type": "string", "description": "how approximate attributions were made"}}},
    "RankResponse": {"type": "object", "required": [
        "event_id", "chosen", "probability", "ranking", "model", "deferred"], "properties": {
        "event_id": {"type": "string"}, "chosen": {"type": "string"},
        "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "ranking": {"type": "array", "items": {"type": "object",
                    "required": ["id", "probability", "score"], "properties": {
                        "id": {"type": "string"}, "probability": _NUM, "score": _NUM}}},
        "model": {"type": "object", "required": ["policy", "version"], "properties": {
            "policy": {"type": "string"}, "version": {"type": "integer", "minimum": 0}}},
        "deferred": {"type": "boolean"},
        "slots": {"type": "array", "items": _ref("SlotDecision"),
                  "description": "multi-slot decisions: each slot's (the top-level fields are the first's)"},
        "explanation": _ref("Explanation"),
        "session": {"type": "object", "required": ["id", "step"],
                    "description": "sequential loops only: the step this decision is",
                    "properties": {"id": {"type": "string"},
                                   "step": {"type": "integer", "minimum": 0}}}}},
    "RewardRequest": {"type": "object", "additionalProperties": False,
                      "description": "value, slot and value (a multi-slot event's), or values",
                      "properties": {"value": _NUM, "end": {
                          "type": "boolean", "description": "also end the step's session"},
                          "slot": _SLOT_ID,
                          "values": {"type": "object", "minProperties": 1,
                                     "additionalProperties": _NUM,
                                     "description": "slot id -> reward"}}},
    "EndResponse": {"type": "object", "required": ["session_id", "steps", "status"], "properties": {
        "session_id": {"type": "string"}, "steps": {"type": "integer", "minimum": 0},
        "status": {"enum": ["ended", "already_ended"]}}},
    "RewardResponse": {"type": "object", "required": ["event_id", "status"], "properties": {
        "event_id": {"type": "string"}, "value": _NUM,
        "values": {"type": "object", "additionalProperties": _NUM, "description": "slot rewards"},
        "status": {"enum": ["accepted", "duplicate"]}}},
    "ActivateResponse": {"type": "object", "required": ["event_id", "status"], "properties": {
        "event_id": {"type": "string"}, "status": {"enum": ["activated", "already_active"]}}},
    "Loop": {"type": "object", "required": [
        "name", "policy", "featurizer", "actions", "reward_wait", "default_reward", "seed",
        "retention", "session", "model", "serving_version", "learning", "served", "counters"],
        "properties": {
        "name": {"type": "string"}, "policy": {"type": "object"}, "featurizer": {"type": "object"},
        "actions": {"type": ["array", "null"], "items": {"type": "string"}},
        "reward_wait": _NUM, "default_reward": _NUM, "seed": {"type": "integer"},
        "retention": _NUM,
        "session": {"type": ["object", "null"], "properties": {
            "ttl": _NUM, "history": {"type": "integer"}}},
        "slots": {"type": "array", "items": _ref("Slot"), "description": "empty: one decision"},
        "model": {"type": "object", "required": ["version"], "properties": {
            "version": {"type": "integer"}, "policy": {"type": ["string", "null"]},
            "created": {"type": ["number", "null"]}}},
        "serving_version": {"type": "integer", "minimum": 0,
                            "description": "the serving pointer (every worker follows it)"},
        "learning": {"type": "boolean", "description": "false: the loop is pinned"},
        "served": {"type": "object", "required": ["version", "worker"], "properties": {
            "version": {"type": "integer"}, "worker": {"type": "integer"}}},
        "counters": {"type": "object", "description": "counts (integers) and reward_sum",
                     "properties": {"reward_sum": _NUM},
                     "additionalProperties": {"type": "integer", "minimum": 0}}}},
    "Loops": {"type": "object", "required": ["loops"],
              "properties": {"loops": {"type": "array", "items": _ref("Loop")}}},
    "ModelVersion": {"type": "object", "required": [
        "version", "served", "serving", "created", "parent", "source", "events_learned", "policy",
        "figures"],
        "properties": {
            "version": {"type": "integer", "minimum": 1}, "created": _NUM, "parent": _OPT_INT,
            "served": {"type": "boolean", "description": "it has served (or serves)"},
            "serving": {"type": "boolean", "description": "the serving pointer names it"},
            "source": {"enum": ["learner", "upload", "challenger", "reset"]}, "events_learned": _OPT_INT,
            "bytes": _INT, "checks": _ref("Checks"), "policy": {"type": "object", "required": ["name", "params"],
                                      "properties": {"name": {"type": "string"},
                                                     "params": {"type": "object"}}},
            "figures": _ref("Figures")}},
    "Figures": {"type": "object", "description": "live figures of the version while it served",
                "required": ["decisions", "rewards", "mean_reward", "low", "high"],
                "additionalProperties": False, "properties": {
        "decisions": {"type": "integer", "minimum": 0, "description": "decisions it made"},
        "rewards": {"type": "integer", "minimum": 0,
                    "description": "rewards joined to them, default rewards included"},
        "mean_reward": {"type": ["number", "null"], "description": "null: no reward yet"},
        "low": {"type": ["number", "null"], "description": "95 % normal interval of the mean "
                                                          "(null: fewer than 2 rewards)"},
        "high": {"type": ["number", "null"]}}},
    "Models": {"type": "object", "required": ["serving", "learning", "models"], "properties": {
        "serving": {"type": "integer", "minimum": 0}, "learning": {"type": "boolean"},
        "models": {"type": "array", "items": _ref("ModelVersion")}}},
    "DeployRequest": {"type": "object", "required": ["version"], "additionalProperties": False,
                      "properties": {
                          "version": {"type": "integer", "minimum": 1},
                          "learn": {"type": "boolean", "default": True,
                                    "description": "false pins the loop: the learner learns nothing"},
                          "force": {"type": "boolean", "default": False,
                                    "description": "deploy a version that never served"},
                          "reason": {"type": "string", "maxLength": 1024}}},
    "DeployResponse": {"type": "object", "required": ["serving", "previous", "learning"],
                       "properties": {"serving": _INT, "previous": _INT, "learning": {"type": "boolean"}}},
    "Checks": {"type": "object", "required": ["passed", "checks"], "properties": {
        "passed": {"type": "boolean"}, "checks": {"type": "array", "items": {
            "type": "object", "required": ["name", "passed", "figures", "message"], "properties": {
                "name": {"enum": ["loads", "pmf", "floor", "actions", "latency"]},
                "passed": {"type": ["boolean", "null"], "description": "null: not run"},
                "figures": {"type": "object"}, "message": {"type": "string"}}}}}},
    "Audit": {"type": "object", "required": ["entries"], "properties": {"entries": {
        "type": "array", "description": "newest first", "items": {
            "type": "object", "required": ["id", "time", "action", "key", "version", "reason"],
            "properties": {
                "id": {"type": "string"}, "time": _NUM, "key": {"type": "string"},
                "action": {"enum": ["deploy", "pin", "refused", "upload", "promote"]},
                "version": _OPT_INT, "from": _OPT_INT, "learn": _OPT_BOOL, "force": _OPT_BOOL,
                "reason": {"type": "string"},
                "challenger": {"type": ["string", "null"], "description": "a promotion's"},
                "figures": {"type": "object", "description": "what the action was decided "
                            "on: a deploy's version figures and checks, a promotion's (or its "
                            "refusal's) challenger figures and gate"}}}}}},
    "Interval": {"type": "object", "required": ["value", "low", "high"], "properties": {
        "value": _OPT_NUM, "low": _OPT_NUM, "high": _OPT_NUM}},
    "ChallengerFigures": {"type": ["object", "null"], "description": "null: nothing evaluated "
                          "yet", "required": ["n", "ess", "snips", "dr", "champion"], "properties": {
        "n": _INT, "ess": _NUM, "snips": _ref("Interval"), "dr": _ref("Interval"),
        "champion": _ref("Interval")}},
    "Gate": {"type": "object", "required": ["passes", "reasons", "bound", "needed"], "properties": {
        "passes": {"type": "boolean"}, "reasons": {"type": "array", "items": {"type": "string"}},
        "bound": _OPT_NUM, "needed": _OPT_NUM}},
    "Challengers": {"type": "object", "required": ["serving", "champion", "window", "promotion",
                                                   "challengers"], "properties": {
        "serving": _INT, "window": _INT, "promotion": {"type": "object"},
        "champion": {"type": ["object", "null"], "description": "the serving model's on-policy "
                     "value over the same events"},
        "challengers": {"type": "array", "items": {
            "type": "object", "required": ["name", "policy", "figures", "verdict", "gate"],
            "properties": {"name": {"type": "string"}, "policy": {"type": "object"},
                           "figures": _ref("ChallengerFigures"),
                           "verdict": {"enum": ["better", "worse", "undecided"]},
                           "gate": _ref("Gate")}}}}},
    "PromoteRequest": {"type": "object", "required": ["challenger"], "additionalProperties": False,
                       "properties": {"challenger": {"type": "string"},
                                      "force": {"type": "boolean", "default": False,
                                                "description": "promote though the gate refuses "
                                                               "(recorded); checks still apply"},
                                      "reason": {"type": "string", "maxLength": 1024}}},
    "PromoteResponse": {"type": "object", "required": [
        "serving", "previous", "learning", "challenger", "figures", "gate", "forced"],
        "properties": {"serving": _INT, "previous": _INT, "learning": {"type": "boolean"},
                       "challenger": {"type": "string"}, "figures": _ref("ChallengerFigures"),
                       "gate": _ref("Gate"), "forced": {"type": "boolean"}}},
    "LoopHealth": {"type": "object", "description": "figures over the window (nulls: nothing "
                   "to divide by or no reward yet); see the monitoring page", "required": [
        "loop", "window", "status", "reasons", "decisions", "rewards", "join_rate", "default_rate",
        "exploration_share", "min_propensity", "latency_ms", "reward", "previous", "versions",
        "actions", "learner_lag", "staleness_s", "serving_version", "learning", "drift", "series"],
        "properties": {
        "loop": {"type": "string"}, "window": {"type": "integer", "minimum": 60,
                                               "description": "seconds"},
        "status": {"enum": ["ok", "warn", "alert"]},
        "reasons": {"type": "array", "items": {
            "type": "object", "required": ["level", "code", "message"], "properties": {
                "level": {"enum": ["warn", "alert"]},
                "code": {"enum": ["join_rate_low", "reward_drift", "data_missing", "learner_lag",
                                  "model_stale", "context_drift", "actions_drift", "reward_drop"]},
                "message": {"type": "string"}}}},
        "decisions": {"type": "integer", "minimum": 0}, "rewards": {"type": "integer", "minimum": 0},
        "join_rate": _OPT_NUM, "default_rate": _OPT_NUM, "exploration_share": _OPT_NUM,
        "min_propensity": _OPT_NUM,
        "latency_ms": {"type": "object", "required": ["mean", "max"],
                       "properties": {"mean": _OPT_NUM, "max": _OPT_NUM}},
        "reward": _ref("RewardInterval"), "previous": _ref("RewardInterval"),
        "versions": {"type": "array", "items": {"type": "object", "required": [
            "version", "decisions", "rewards", "mean", "low", "high"], "properties": {
            "version": _INT, "decisions": _INT, "rewards": _INT, "mean": _OPT_NUM, "low": _OPT_NUM,
            "high": _OPT_NUM}}},
        "actions": {"type": "array", "items": {"type": "object", "required": [
            "id", "decisions", "share", "rewards", "mean"], "properties": {
            "id": {"type": "string", "description": "_other: the ids past health.max_actions"},
            "decisions": _INT, "share": _OPT_NUM, "rewards": _INT, "mean": _OPT_NUM}}},
        "learner_lag": {"type": "integer", "minimum": 0,
                        "description": "joined events the learner has not learned yet"},
        "staleness_s": {"type": ["number", "null"],
                        "description": "seconds since the last publication (null: none yet)"},
        "serving_version": {"type": "integer", "minimum": 0}, "learning": {"type": "boolean"},
        "drift": {"type": "object", "description": "the drift detectors' JSON fields",
                  "additionalProperties": {"type": "object"}},
        "series": {"type": "object", "required": [
            "minute", "step", "decisions", "rewards", "mean_reward", "low", "high", "join_rate",
            "exploration_share", "by_version", "by_action"], "properties": {
            "minute": {"type": "array", "items": _INT,
                       "description": "Unix seconds of each point's first minute"},
            "step": {"type": "integer", "description": "seconds per point"},
            **{k: {"type": "array", "items": _INT} for k in ("decisions", "rewards")},
            **{k: {"type": "array", "items": _OPT_NUM}
               for k in ("mean_reward", "low", "high", "join_rate", "exploration_share")},
            "by_version": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["mean_reward", "low", "high"],
                "additionalProperties": {"type": "array", "items": _OPT_NUM}}},
            "by_action": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["share"],
                "properties": {"share": {"type": "array", "items": _OPT_NUM}}}}}}}},
    "RewardInterval": {"type": "object", "required": ["mean", "low", "high", "n"], "properties": {
        "mean": _OPT_NUM, "low": _OPT_NUM, "high": _OPT_NUM,
        "n": {"type": "integer", "minimum": 0, "description": "rewards joined"}}},
    "Health": {"type": "object", "required": ["status", "redis", "loops"], "properties": {
        "status": {"enum": ["ok", "unavailable"]}, "redis": {"type": "boolean"},
        "loops": {"type": "array", "items": {"type": "string"}}}},
}

#: API keys (see service.api.auth); without configured keys the service runs open.
