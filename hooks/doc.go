// Package hooks holds courier's mochi-mqtt hooks. This file set provides the
// authentication and authorization hooks:
//
//   - TokenAuth: CONNECT with a broker token (package auth) as password,
//     bound to the token's client id; ACL from the token's grants; disconnect
//     on expiry unless the client re-authenticates with an MQTT 5 AUTH packet.
//   - UsersAuth: CONNECT with username and bcrypt password from a users file,
//     ACL from the user's grants.
//
// TokenAuth can also take the users file as a fallback for passwords that
// are not JWTs, so one hook serves apps with tokens and devices with
// passwords. An IdentityStore keeps client id bindings across restarts.
//
// Both send the precise CONNACK reason (MQTT 5 0x86 bad credentials, 0x87 not
// authorized; MQTT 3.1.1 return codes 4 and 5) instead of mochi's blanket
// 0x86, refuse a session takeover by another identity, check SUBSCRIBE by
// filter containment, and authorize deliveries to offline persistent
// sessions from the identity that created them. Denials can be observed
// through an OnDenied callback.
//
// Usage:
//
//	v, _ := authCfg.NewVerifier()
//	h, _ := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: v, Logger: l, OnDenied: record})
//	b, _ := broker.New(cfg, broker.WithAuthHook(h, nil))
//
// Re-authentication (MQTT 5): send AUTH with reason 0x19, Authentication
// Method "courier-token" (AuthMethod) and a fresh token as Authentication
// Data; the broker answers AUTH 0x00, or DISCONNECT 0x87 / 0x8C.
//
// mochi ORs the answers of auth hooks: never register an allow-all hook
// beside these.
package hooks
