package broker

import (
	_ "unsafe" // for go:linkname

	mqtt "github.com/mochi-mqtt/server/v2"
)

// mochiFlushOutbuf is mochi's (*Client).flushOutbuf: it writes the packets
// mochi has buffered for a client to the connection. Call with cl locked.
//
//go:linkname mochiFlushOutbuf github.com/mochi-mqtt/server/v2.(*Client).flushOutbuf
func mochiFlushOutbuf(cl *mqtt.Client) error
