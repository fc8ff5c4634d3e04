package hooks_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

// A broker that checks tokens: the token's client id must be the CONNECT
// client id, and a bad token is told apart from a misused one.
func ExampleNewTokenAuth() {
	key, _ := auth.GenerateEd25519Key("k1")
	keys, _ := auth.NewKeySet("k1", key)
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{
		Verifier: auth.NewVerifier(keys.Public(), auth.VerifierOptions{}),
	})
	if err != nil {
		panic(err)
	}
	b, err := broker.New(brokertest.Config(""), broker.WithAuthHook(h, nil))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	defer b.Shutdown(ctx)

	now := time.Now()
	token, _ := keys.Sign(&auth.Claims{
		Subject: "alice", ClientID: "alice-1", IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		Perms: auth.Grants{Pub: []string{"chat/%u"}, Sub: []string{"chat/+"}},
	})
	fmt.Printf("alice-1: 0x%02x\n", connack(b.Addr("tcp"), "alice-1", token))
	fmt.Printf("alice-2 with alice-1's token: 0x%02x\n", connack(b.Addr("tcp"), "alice-2", token))
	fmt.Printf("garbage token: 0x%02x\n", connack(b.Addr("tcp"), "alice-1", "garbage"))
	// Output:
	// alice-1: 0x00
	// alice-2 with alice-1's token: 0x87
	// garbage token: 0x86
}

// connack sends an MQTT 5 CONNECT and returns the CONNACK reason code.
func connack(addr, clientID, password string) byte {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Clean: true, Keepalive: 30,
			PasswordFlag: true, Password: []byte(password),
		},
	}
	var buf bytes.Buffer
	_ = pk.ConnectEncode(&buf)
	_, _ = c.Write(buf.Bytes())
	r := bufio.NewReader(c)
	if _, err := r.ReadByte(); err != nil {
		panic(err)
	}
	n, _, _ := packets.DecodeLength(r)
	body := make([]byte, n)
	_, _ = io.ReadFull(r, body)
	return body[1] // flags, reason code, properties
}
