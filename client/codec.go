package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// EncoderFunc turns a message into a payload. An encoder in a chain returns
// ErrUnsupportedType for types it does not handle.
type EncoderFunc func(ctx context.Context, v any) ([]byte, error)

// DecoderFunc fills v from a payload. A decoder in a chain returns
// ErrUnsupportedType for targets it does not handle.
type DecoderFunc func(ctx context.Context, payload []byte, v any) error

// RawEncoder sends []byte and string as they are.
func RawEncoder(_ context.Context, v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case string:
		return []byte(m), nil
	case nil:
		return nil, nil
	}
	return nil, ErrUnsupportedType
}

// JSONEncoder encodes any value as JSON.
func JSONEncoder(_ context.Context, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode json: %w", err)
	}
	return b, nil
}

// RawDecoder fills *[]byte and *string with the payload.
func RawDecoder(_ context.Context, payload []byte, v any) error {
	switch t := v.(type) {
	case *[]byte:
		*t = append([]byte(nil), payload...)
		return nil
	case *string:
		*t = string(payload)
		return nil
	}
	return ErrUnsupportedType
}

// JSONDecoder decodes a JSON payload into v.
func JSONDecoder(_ context.Context, payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("client: decode json: %w", err)
	}
	return nil
}

// Base64JSONDecoder decodes a base64 payload holding JSON (courier-go's
// WithUseBase64Decoder).
func Base64JSONDecoder(ctx context.Context, payload []byte, v any) error {
	raw, err := base64.StdEncoding.AppendDecode(nil, payload)
	if err != nil {
		return fmt.Errorf("client: decode base64: %w", err)
	}
	return JSONDecoder(ctx, raw, v)
}

// ChainEncoders tries each encoder in order until one does not answer
// ErrUnsupportedType.
func ChainEncoders(encs ...EncoderFunc) EncoderFunc {
	return func(ctx context.Context, v any) ([]byte, error) {
		for _, e := range encs {
			b, err := e(ctx, v)
			if errors.Is(err, ErrUnsupportedType) {
				continue
			}
			return b, err
		}
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
}

// ChainDecoders tries each decoder in order until one does not answer
// ErrUnsupportedType.
func ChainDecoders(decs ...DecoderFunc) DecoderFunc {
	return func(ctx context.Context, payload []byte, v any) error {
		for _, d := range decs {
			err := d(ctx, payload, v)
			if errors.Is(err, ErrUnsupportedType) {
				continue
			}
			return err
		}
		return fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
}

// DefaultEncoder sends []byte and string raw and everything else as JSON.
func DefaultEncoder(ctx context.Context, v any) ([]byte, error) {
	if b, err := RawEncoder(ctx, v); !errors.Is(err, ErrUnsupportedType) {
		return b, err
	}
	return JSONEncoder(ctx, v)
}

// DefaultDecoder fills *[]byte and *string raw and decodes everything else as JSON.
func DefaultDecoder(ctx context.Context, payload []byte, v any) error {
	if err := RawDecoder(ctx, payload, v); !errors.Is(err, ErrUnsupportedType) {
		return err
	}
	return JSONDecoder(ctx, payload, v)
}
