"""Stage and reason names: the funnel's vocabulary. Counters, rejected/ folders, the manifest and
the summary table all use these constants, never ad-hoc strings."""

# Stages, in funnel order.
READ = "read"
VALIDATE = "validate"
DEDUP = "dedup"
FILTER = "filter"
CORPUS = "corpus"  # rows of the candidate corpus (not examples: counted apart)

# read: the reader could not parse the row (prefixes of RawRow.error).
INVALID_UTF8 = "invalid_utf8"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MALFORMED_CSV = "malformed_csv"

# validate
MISSING_FIELD = "missing_field"
NULL_FIELD = "null_field"
BLANK_FIELD = "blank_field"
WRONG_TYPE = "wrong_type"
TEXT_TOO_LONG = "text_too_long"
OVER_TEACHER_LIMIT = "over_teacher_token_limit"
QUERY_IS_POSITIVE = "query_equals_positive"
BAD_TASK_TYPE = "unknown_task_type"

# dedup
DUPLICATE = "duplicate"
DUPLICATE_ID = "duplicate_id"

# filter
INCONSISTENT_RANKING = "inconsistent_ranking"

# Quality stages after dedup (kalm_data.stages.neardup, kalm_data.stages.decontaminate).
NEARDUP = "neardup"
DECONTAMINATE = "decontaminate"
MERGE = "merge"
NEAR_DUPLICATE = "near_duplicate"
CONTAMINATED = "contaminated"

#: Curate's stages in funnel order (the card's table and chart follow it); generate's stages
#: (brainstorm, tasks, example, duplicates) come first in a synthesize run.
STAGES = (
    "brainstorm",
    "tasks",
    "example",
    "duplicates",
    READ,
    VALIDATE,
    DEDUP,
    DECONTAMINATE,
    NEARDUP,
    MERGE,
    FILTER,
)
