import sys

from lecture_grading.grader.cli import main

sys.exit(main())
