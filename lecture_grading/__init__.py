"""Checks for the graded assignments: the same tests give students instant feedback and grade submissions.

A test has three parts, written in the assignment's master notebook (see ``assignments/README.md``):

* *given*: inputs, built the same way in the student's process and in the grader's;
* *call*: code that calls the student's functions; the names it assigns are its result, sent on as plain
  data (``wire``: JSON and tensors, never pickle);
* *check*: the comparison (``expect``), which sees only that data.

In a student's notebook ``check("q1")`` (``Checks``) runs all three there, for the public tests. When grading,
``tools/assignments.py`` runs the *call* part inside a sandbox (``runner``) and the *check* part in its own
process, so nothing the notebook does can change how its results are judged.

Nothing here is secret: hidden tests and expected values live only with the instructor.
"""

from lecture_grading.checks import Checks, TestSpec

__all__ = ["Checks", "TestSpec"]
