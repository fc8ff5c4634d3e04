// Package wire is the small MQTT 3.1.1 and 5 client codec that loadgen drives.
//
// It implements only what a load generator needs (CONNECT, PUBLISH at QoS 0-2,
// SUBSCRIBE, PINGREQ, DISCONNECT) with no per-message allocation and no
// goroutine per operation, so what loadgen measures is the broker and not the
// client library. One reader goroutine per Client runs the Handler callbacks;
// writes are buffered and flushed explicitly (or when the reader drains).
//
//	d, _ := wire.NewDialer("tcp://127.0.0.1:1883", nil, nil)
//	conn, _ := d.Dial(ctx)
//	c, _ := wire.Connect(ctx, conn, wire.ConnectOptions{Version: wire.V5, ClientID: "a"}, wire.Handler{})
//	_ = c.Subscribe(ctx, "t/#", 1)
//	_, _ = c.Publish(ctx, "t/1", 1, []byte("hi"), 0, true)
//	_ = c.Close()
package wire
