"""The grader: everything only an instructor's (or Gradescope's) grading process runs.

Nothing here is imported by a student's ``check("qN")`` (``lecture_grading.Checks``) or by the runner inside
the sandbox; the modules, in the order a submission meets them (``assignments/README.md`` has the picture):

==================  ============================================================================================
``master``          a master notebook read and parsed once: settings, questions, tests, cells by role
``build``           the student notebook, the answered notebook and tests.json, from a master
``plan``            a submission read as data, and the steps grading runs
``rules``           the assignment's rules, checked by reading the code
``sandbox``         backends behind one interface: bubblewrap, container, unsafe
``grade``           one submission: plan, run in a sandbox, judge here; many at a time
``score``           judging a test's data, and the scoring rule with named reasons
``text``            student-controlled text made safe for a terminal, a spreadsheet and a web page
``reports``         the per-student report, the notes, the summary, the progress line
``exports``         the CSV, and Gradescope's results.json with its JSON Schema
``gradescope``      the Gradescope autograder zip, and what its run_autograder runs
``cli``             ``python -m lecture_grading.grader build | grade | gradescope | run-autograder``
==================  ============================================================================================
"""
