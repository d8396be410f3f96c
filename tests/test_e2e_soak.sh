#!/bin/bash
# The soak (tests/soak.sh), shorter: 20,000 events over 400 sessions in
# 50 s, with the same fault schedule compressed (kill -9 of a worker of
# each kind, of the broker, of Redis twice with its AOF tail lost, a 10 s
# Redis outage, a worker joining and one leaving). `make soak` runs the
# whole one.
# brokers: apache
export SOAK_EVENTS=${SOAK_EVENTS:-20000} SOAK_SESSIONS=${SOAK_SESSIONS:-400}
export SOAK_SECONDS=${SOAK_SECONDS:-50} SOAK_RATE=${SOAK_RATE:-20}
. "$(dirname "$0")/soak.sh"
