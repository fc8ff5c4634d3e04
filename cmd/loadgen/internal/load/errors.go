package load

import "errors"

var (
	// ErrConfig is wrapped by Validate for every problem in a Config.
	ErrConfig = errors.New("load: invalid config")
	// ErrToken is returned (wrapped) when the token API does not give credentials.
	ErrToken = errors.New("load: token API")
	// ErrNotConnected is returned when a scenario could not connect a single client.
	ErrNotConnected = errors.New("load: no client could connect")
	// ErrOutage is returned (wrapped) when the storm outage function fails.
	ErrOutage = errors.New("load: outage")
)
