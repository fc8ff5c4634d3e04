package broker

import (
	"context"
	"log/slog"
	"sync"
)

// mochiLogHandler wraps the broker's handler for mochi's own logging. It
// demotes mochi's chatty Info lines to Debug, tags them component=mochi, and
// watches for the line mochi logs when its event loop returns: mochi's Close
// does not wait for that loop, so Shutdown waits for this signal before it
// closes the store under it.
type mochiLogHandler struct {
	inner  slog.Handler
	halted chan struct{}
	once   *sync.Once
}

const mochiLoopHalted = "system event loop halted"

func newMochiLogHandler(inner slog.Handler) *mochiLogHandler {
	return &mochiLogHandler{
		inner:  inner.WithAttrs([]slog.Attr{slog.String("component", "mochi")}),
		halted: make(chan struct{}),
		once:   new(sync.Once),
	}
}

func (h *mochiLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Debug must stay enabled to see the loop-halted line; mochi logs at
	// Debug only off the hot path (connect, disconnect, errors).
	return l == slog.LevelDebug || h.inner.Enabled(ctx, demote(l))
}

func (h *mochiLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && r.Message == mochiLoopHalted {
		h.once.Do(func() { close(h.halted) })
	}
	r.Level = demote(r.Level)
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *mochiLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	return &c
}

func (h *mochiLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

func demote(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
