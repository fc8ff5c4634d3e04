package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/courier-mqtt/courier/auth"
)

// runKeys handles `broker keys generate` and `broker keys apikey`.
func runKeys(args []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: broker keys generate --dir DIR --kid ID   write an Ed25519 key pair DIR/ID.key and DIR/ID.pub")
		fmt.Fprintln(stderr, "       broker keys apikey --identity NAME      print a new API key and its api_keys_file entry")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	fs := flag.NewFlagSet("broker keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "generate":
		dir := fs.String("dir", ".", "directory for the key files")
		kid := fs.String("kid", "", "key id (JWT kid), required")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *kid == "" {
			fmt.Fprintln(stderr, "broker keys generate: --kid is required")
			return 2
		}
		k, err := auth.GenerateEd25519Key(*kid)
		if err != nil {
			fmt.Fprintln(stderr, "broker keys generate:", err)
			return 1
		}
		files, err := auth.WriteKeyPair(*dir, k)
		if err != nil {
			fmt.Fprintln(stderr, "broker keys generate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "private key (token API only): %s\npublic key (brokers verify with it): %s\n", files.Private, files.Public)
		fmt.Fprintf(stdout, "config:\n  auth:\n    keys:\n      - {id: %s, private_key_file: %s}\n    active_key: %s\n", *kid, files.Private, *kid)
		return 0
	case "apikey":
		identity := fs.String("identity", "", "identity the key authenticates, required")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *identity == "" {
			fmt.Fprintln(stderr, "broker keys apikey: --identity is required")
			return 2
		}
		key, err := auth.GenerateAPIKey()
		if err != nil {
			fmt.Fprintln(stderr, "broker keys apikey:", err)
			return 1
		}
		fmt.Fprintf(stdout, "api key (give to the caller, shown once): %s\napi_keys_file entry:\n  - identity: %s\n    sha256: %s\n", key, *identity, auth.HashAPIKey(key))
		return 0
	}
	return usage()
}
