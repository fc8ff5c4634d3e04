package broker

// ParkedInOrder exposes parkedInOrder to the external tests.
var ParkedInOrder = parkedInOrder
