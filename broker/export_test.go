package broker

// OldestParked exposes oldestParked to the external tests.
var OldestParked = oldestParked
