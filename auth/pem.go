package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	pemPrivate = "PRIVATE KEY" // PKCS #8
	pemPublic  = "PUBLIC KEY"  // PKIX
)

// MarshalPrivateKeyPEM encodes an Ed25519 signing key as a PKCS #8
// "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(k Key) ([]byte, error) {
	if k.alg != AlgEdDSA || k.priv == nil {
		return nil, fmt.Errorf("%w: %q is not an ed25519 private key", ErrInvalidKey, k.id)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key %q: %w", k.id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes the public half of an Ed25519 key as a PKIX
// "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(k Key) ([]byte, error) {
	if k.alg != AlgEdDSA || k.pub == nil {
		return nil, fmt.Errorf("%w: %q is not an ed25519 key", ErrInvalidKey, k.id)
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key %q: %w", k.id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// ParseKeyPEM reads an Ed25519 key from PEM data: a "PRIVATE KEY" block gives
// a signing key, a "PUBLIC KEY" block a verify-only key.
func ParseKeyPEM(kid string, data []byte) (Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return Key{}, fmt.Errorf("%w: %q: no PEM block", ErrInvalidKey, kid)
	}
	switch block.Type {
	case pemPrivate:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("%w: %q: %v", ErrInvalidKey, kid, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return Key{}, fmt.Errorf("%w: %q: not an ed25519 key", ErrInvalidKey, kid)
		}
		return NewEd25519Key(kid, priv)
	case pemPublic:
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("%w: %q: %v", ErrInvalidKey, kid, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return Key{}, fmt.Errorf("%w: %q: not an ed25519 key", ErrInvalidKey, kid)
		}
		return NewEd25519PublicKey(kid, pub)
	default:
		return Key{}, fmt.Errorf("%w: %q: unexpected PEM block %q", ErrInvalidKey, kid, block.Type)
	}
}

// LoadKeyFile reads an Ed25519 key (private or public PEM) from path.
func LoadKeyFile(kid, path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read key file: %w", err)
	}
	return ParseKeyPEM(kid, data)
}

// LoadHMACKeyFile reads an HS256 secret from path (surrounding whitespace is
// trimmed; at least 32 bytes must remain).
func LoadHMACKeyFile(kid, path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read secret file: %w", err)
	}
	return NewHMACKey(kid, bytes.TrimSpace(data))
}

// GenerateKeyFiles generates an Ed25519 key pair with id kid and writes it
// to dir as {kid}.key (private, 0600) and {kid}.pub (public): the whole of
// `broker keys generate`.
func GenerateKeyFiles(dir, kid string) (KeyFiles, error) {
	k, err := GenerateEd25519Key(kid)
	if err != nil {
		return KeyFiles{}, err
	}
	return WriteKeyPair(dir, k)
}

// KeyFiles are the paths WriteKeyPair wrote.
type KeyFiles struct {
	Private string // {dir}/{kid}.key, mode 0600
	Public  string // {dir}/{kid}.pub, mode 0644
}

// WriteKeyPair writes k (an Ed25519 signing key) as {dir}/{kid}.key and
// {dir}/{kid}.pub. It refuses to overwrite existing files. This is what
// `broker keys generate` calls after GenerateEd25519Key.
func WriteKeyPair(dir string, k Key) (KeyFiles, error) {
	priv, err := MarshalPrivateKeyPEM(k)
	if err != nil {
		return KeyFiles{}, err
	}
	pub, err := MarshalPublicKeyPEM(k)
	if err != nil {
		return KeyFiles{}, err
	}
	if k.id != filepath.Base(k.id) || k.id == "." || k.id == ".." {
		return KeyFiles{}, fmt.Errorf("%w: key id %q cannot be a file name", ErrInvalidKey, k.id)
	}
	files := KeyFiles{
		Private: filepath.Join(dir, k.id+".key"),
		Public:  filepath.Join(dir, k.id+".pub"),
	}
	if err := writeNew(files.Private, priv, 0o600); err != nil {
		return KeyFiles{}, err
	}
	if err := writeNew(files.Public, pub, 0o644); err != nil {
		return KeyFiles{}, errors.Join(err, os.Remove(files.Private))
	}
	return files, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}
