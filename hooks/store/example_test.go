package store_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/courier-mqtt/courier/hooks/store"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// A mochi server with the fixes and the durable store, restarted on the same
// data directory: the retained message comes back.
func Example() {
	dir, err := os.MkdirTemp("", "courier-store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	run := func(publish bool) {
		srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		fixes := store.NewFixes(srv)
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			panic(err)
		}
		_ = srv.AddHook(new(auth.AllowHook), nil)
		_ = srv.AddHook(fixes, nil)
		_ = srv.AddHook(st, store.Config{Server: srv, Fixes: fixes}) // last
		_ = srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"}))
		if err := srv.Serve(); err != nil {
			panic(err)
		}
		if publish {
			_ = srv.Publish("greeting", []byte("hello"), true, 1)
		} else if pk, ok := srv.Topics.Retained.Get("greeting"); ok {
			fmt.Printf("restored %s: %s\n", pk.TopicName, pk.Payload)
		}
		_ = srv.Close()
		_ = st.Close()
	}
	run(true)
	run(false)
	// Output: restored greeting: hello
}
