"""What a launch decides per recipient (issue 17), one module per question, so each can grow on
its own: `targeting` (who: everyone, or by predicted uplift), `allocation` (which variant: a
fixed split, A/B then winner, or a bandit in waves) and `timing` (when: the campaign's time, or
each recipient's best hour). Each prepares once per launch (`for_launch`) and then answers per
customer. What it decided goes to the message's `decision`; the probability with which the
variant was chosen to its `propensity`, so any later policy can be judged on these logs."""
