package report

import "errors"

// ErrNoResult is returned when there is nothing to render.
var ErrNoResult = errors.New("report: no result")
