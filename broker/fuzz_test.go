package broker_test

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
)

// FuzzBrokerSurvivesArbitraryBytesAfterConnect sends arbitrary bytes after a
// valid MQTT 5 CONNECT; whatever they are, the broker must keep serving other
// clients. `go test` runs the seeds; `go test -fuzz=Fuzz ./broker` explores.
func FuzzBrokerSurvivesArbitraryBytesAfterConnect(f *testing.F) {
	f.Add(truncatedV5Subscribe())
	f.Add(frame(0x82, []byte{0, 1, 0, 0, 1, 'a'}))                // v5 subscribe, options byte missing
	f.Add(frame(0xA2, []byte{0, 1, 0xff}))                        // unsubscribe, bad properties length
	f.Add(frame(0x30, []byte{0, 0}))                              // publish with empty topic
	f.Add(frame(0x32, append(str("a"), 0, 0, 0x05, 0x02, 0, 0)))  // qos 1 publish, packet id 0
	f.Add(frame(0xF0, []byte{0x00, 0x05, 0x15, 0x00, 0x01, 'x'})) // AUTH with a truncated property
	f.Add([]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01})             // five-byte remaining length
	srv := brokertest.Start(f, brokertest.WithoutStore())
	alive := dialRaw(f, "tcp", srv.TCPAddr)
	alive.connect(4, "fuzz-survivor", 60)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := dialRaw(t, "tcp", srv.TCPAddr)
		c.connect(5, "fuzzed", 60)
		_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.conn.Write(data)
		_ = c.conn.Close()
		if _, err := alive.conn.Write(frame(0xC0, nil)); err != nil {
			t.Fatalf("broker closed the survivor after %x: %v", data, err)
		}
		p, err := alive.read(5 * time.Second)
		if err != nil || p.kind() != 13 {
			t.Fatalf("broker stopped serving after %x: %#x %v", data, p.header, err)
		}
	})
}
