package broker

import "errors"

var (
	// ErrServerClosed is returned by Start after Shutdown has been called: a
	// Broker is not restartable; create a new one with New.
	ErrServerClosed = errors.New("broker: server closed")

	// ErrAlreadyStarted is returned by a second call to Start.
	ErrAlreadyStarted = errors.New("broker: already started")

	// ErrNotStarted is returned by operations that need a started broker.
	ErrNotStarted = errors.New("broker: not started")

	// ErrUnknownListener is returned by operations naming a listener that is
	// not configured.
	ErrUnknownListener = errors.New("broker: unknown listener")

	// ErrWriteStalled ends a connection whose client accepted no data for
	// Limits.WriteTimeout: it stopped reading, and the broker's writes to
	// it (and every publisher routing QoS 1/2 messages to it) would wait.
	ErrWriteStalled = errors.New("broker: client stopped reading (write timed out)")
)
