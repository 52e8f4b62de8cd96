"""Named database jobs: one transaction each, load → pure core → write."""
