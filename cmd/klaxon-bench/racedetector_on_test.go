//go:build race

package main

// raceDetector is on: tests whose subject the race detector cannot
// change, and which it makes many times slower, may leave the run to the
// one without it (README, "Set-up").
const raceDetector = true
