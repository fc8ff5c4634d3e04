//go:build unix && !linux

package store

import "errors"

// populateWrite is Linux only; elsewhere the first write to a page faults.
func populateWrite([]byte) error { return errors.ErrUnsupported }
