from curation.select.grading import GradeCache, LlmGrader, OpenAiGrader, TransformersGrader
from curation.select.rubric import GradePrompt, parse_grade

__all__ = ["GradeCache", "GradePrompt", "LlmGrader", "OpenAiGrader", "TransformersGrader", "parse_grade"]
