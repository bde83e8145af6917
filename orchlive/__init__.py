"""orchlive: the live master/worker cluster that runs orchsim.scheduling policies unchanged."""
