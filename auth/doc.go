// Package auth issues and verifies courier broker tokens, compiles their
// topic permissions, and serves the Courier token API.
//
// It is pure Go (no MQTT library): the broker's mochi hook lives in package
// hooks and calls into this package.
//
// # Tokens
//
// A broker token is a JWT signed with EdDSA (Ed25519, the default) or HS256,
// whose header names the key ("kid"). Its claims (Claims) bind it to one
// identity ("sub") and one MQTT client id ("cid"), bound its life ("iat",
// "nbf", "exp"), carry a unique id ("jti"), topic grants ("perms": "pub" and
// "sub" filter lists with %u and %c templates) and an admin flag.
//
// A KeySet holds every key a verifier accepts and names the active key the
// issuer signs with; rotate by adding a new key, making it active, and
// dropping the old one after its tokens expire. A Verifier needs only public
// keys (KeySet.Public) and rejects a token whose alg differs from its key's,
// so "none" and HS256-with-a-public-key never verify.
//
// # Permissions
//
// Compile expands templates and returns Permissions: CanPublish matches a
// topic against the publish grants; CanSubscribe checks filter containment
// (a grant "a/+" does not allow "a/#"; "$share/g/f" is checked on f);
// CanReceive checks a delivered topic. $SYS needs the admin flag. A template
// value with '+', '#' or '/' drops the grant instead of widening it.
//
// # Token API
//
// TokenAPI serves GET and POST /v1/token: the caller authenticates through an
// Authenticator (built in: bearer API keys stored as SHA-256 hashes), a
// Policy chooses the client id and grants, and the Issuer answers the JSON the
// Courier mobile clients expect:
//
//	{"clientId","username","password","host","port","cleanSession","keepAlive","expiresAt"}
//
// Requests are rate limited per remote address (before authentication) and
// per identity; errors are {"error":{"code","message"}} with stable codes.
//
// # Usage
//
//	key, _ := auth.GenerateEd25519Key("2026-11")
//	files, _ := auth.WriteKeyPair(dir, key)          // `broker keys generate`
//	ks, _ := auth.NewKeySet("2026-11", key)
//	iss, _ := auth.NewIssuer(auth.IssuerOptions{Keys: ks, Host: "mqtt.example.com", Port: 8883})
//	api, _ := auth.NewTokenAPI(auth.TokenAPIOptions{Authenticator: apiKeys, Issuer: iss, Policies: pols})
//	http.Handle(auth.TokenPath, api)
//
//	v := auth.NewVerifier(ks.Public(), auth.VerifierOptions{}) // in the broker
//	claims, err := v.Verify(password, time.Now())
//	perms := claims.Compile()
//
// For configuration files see Config; for simple self-hosting without a
// token API see Users (bcrypt passwords with per-user grants).
package auth
