package otelcourier

import "errors"

// ErrNilClient is returned by Instrument when given a nil client.
var ErrNilClient = errors.New("otelcourier: nil client")
