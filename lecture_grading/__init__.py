"""Checks for the graded assignments: the same tests give students instant feedback and grade submissions.

A test has three parts, written in the assignment's master notebook (see ``assignments/README.md``):

* *given*: inputs, built the same way in the student's process and in the grader's;
* *call*: code that calls the student's functions; the names it assigns are its result, sent on as plain
  data (``wire``: JSON and tensors, never pickle);
* *check*: the comparison (``expect``), which sees only that data.

In a student's notebook ``check("q1")`` (``Checks``) runs all three there, for the public tests. When grading,
the grader (``lecture_grading.grader``) runs the *call* part inside a sandbox (``runner``) and the *check*
part in its own process, so nothing the notebook does can change how its results are judged.

The package's two sides:

* what a student's ``check("qN")`` and the sandbox's runner need: ``checks`` (tests in three parts,
  ``Checks``), ``expect`` (comparisons), ``wire`` (results as plain data), and, shared by both ends of the
  grader's channel, ``protocol`` (the step messages), ``limits`` (each limit defined once) and ``seccomp``
  (the container backend's filter), and ``runner`` (the sandbox side);
* ``grader``: everything only the grading process runs (building, planning, sandboxes, scoring, reports,
  exports, Gradescope, the command line).  Nothing on the first side imports it.

Nothing on the first side is secret: hidden tests and expected values live only with the instructor.
"""

from lecture_grading.checks import Checks, TestSpec

__all__ = ["Checks", "TestSpec"]
