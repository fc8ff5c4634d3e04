package client_test

// raceEnabled is true when the test binary runs with the race detector.
var raceEnabled bool
