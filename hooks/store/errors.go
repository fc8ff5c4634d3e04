package store

import "errors"

var (
	// ErrClosed is returned by operations on a Store after Close.
	ErrClosed = errors.New("store: closed")

	// ErrSchemaVersion is returned by Open when the data directory holds a
	// schema version this code does not know (written by a newer courier) or
	// data without any schema marker.
	ErrSchemaVersion = errors.New("store: unknown schema version")

	// ErrCorrupt is returned (wrapped) by record decoders when a stored value
	// is malformed. Open and restore never fail with it: corrupt records are
	// logged, moved to the quarantine prefix and skipped.
	ErrCorrupt = errors.New("store: corrupt record")

	// ErrNoServer is returned by Init when the hook config carries no
	// *mqtt.Server.
	ErrNoServer = errors.New("store: hook config has no server")
)
