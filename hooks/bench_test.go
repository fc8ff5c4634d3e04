package hooks_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

// BenchmarkConnect measures full CONNECT/CONNACK/DISCONNECT cycles over
// loopback TCP, in parallel, with token auth off (anonymous) and on: "token"
// gives every connect its own client id and fresh token (a restart storm:
// every signature is checked); "token-reconnect" cycles 256 client ids whose
// tokens the verifier's cache has seen (a reconnect storm on a live broker).
// Minting happens before the timer starts. connects/s = 1e9 / ns/op.
func BenchmarkConnect(b *testing.B) {
	for _, mode := range []string{"anonymous", "token", "token-reconnect"} {
		b.Run(mode, func(b *testing.B) {
			var opts []brokertest.Option
			opts = append(opts, brokertest.WithoutStore())
			var ks *auth.KeySet
			ids := b.N
			if mode != "anonymous" {
				key, _ := auth.GenerateEd25519Key("k1")
				ks, _ = auth.NewKeySet("k1", key)
				vo := auth.VerifierOptions{}
				if mode == "token-reconnect" {
					vo.CacheSize = 1024
					ids = min(b.N, 256)
				}
				h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: auth.NewVerifier(ks.Public(), vo)})
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, brokertest.WithOptions(broker.WithAuthHook(h, nil)))
			}
			srv := brokertest.Start(b, opts...)
			frames := make([][]byte, ids)
			for i := range frames {
				cid := fmt.Sprintf("bench-%d", i)
				var pass []byte
				if ks != nil {
					now := time.Now()
					tok, err := ks.Sign(&auth.Claims{Subject: "bench", ClientID: cid, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
						Perms: auth.Grants{Pub: []string{"bench/%c"}, Sub: []string{"bench/%c/#"}}})
					if err != nil {
						b.Fatal(err)
					}
					pass = []byte(tok)
				}
				frames[i] = connectFrame(b, cid, pass)
			}
			disconnect := []byte{0xE0, 0x00}
			var next atomic.Int64
			b.SetParallelism(4) // keep the broker busy while clients wait on the network
			cpu := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := (next.Add(1) - 1) % int64(len(frames))
					c, err := net.Dial("tcp", srv.TCPAddr)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = c.Write(frames[i])
					r := bufio.NewReader(c)
					h, err := r.ReadByte()
					if err != nil || h>>4 != packets.Connack {
						b.Errorf("no CONNACK: %v", err)
						c.Close()
						return
					}
					n, _, _ := packets.DecodeLength(r)
					body := make([]byte, n)
					_, _ = io.ReadFull(r, body)
					if body[1] != 0 {
						b.Errorf("CONNACK 0x%02x", body[1])
					}
					_, _ = c.Write(disconnect)
					c.Close()
				}
			})
			b.StopTimer()
			// client and broker share the process: this is both ends' CPU
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func connectFrame(b *testing.B, cid string, pass []byte) []byte {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: cid, Clean: true, Keepalive: 30,
		},
	}
	if len(pass) > 0 { // a 3.1.1 password needs a username (MQTT 3.1.1 rule 3.1.2-22)
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte("bench")
		pk.Connect.PasswordFlag, pk.Connect.Password = true, pass
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkACLDeliver is the per-message, per-subscriber read check mochi
// makes on every delivery (OnACLCheck with write=false).
func BenchmarkACLDeliver(b *testing.B) {
	key, _ := auth.GenerateEd25519Key("k1")
	ks, _ := auth.NewKeySet("k1", key)
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: auth.NewVerifier(ks.Public(), auth.VerifierOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Stop()
	cl := mqtt.New(&mqtt.Options{}).NewClient(nil, "tcp", "dev-1", false)
	now := time.Now()
	tok, _ := ks.Sign(&auth.Claims{Subject: "alice", ClientID: "dev-1", IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		Perms: auth.Grants{Sub: []string{"devices/%c/in/#", "chat/+", "news/+/today", "alerts"}}})
	if err := h.OnConnect(cl, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "dev-1", Password: []byte(tok)}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !h.OnACLCheck(cl, "devices/dev-1/in/cmd/reboot", false) {
			b.Fatal("denied")
		}
	}
}
