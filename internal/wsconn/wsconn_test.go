package wsconn_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/courier-mqtt/courier/internal/wsconn"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a client Conn whose server side sends frames, then closes.
func pair(t *testing.T, frames func(*websocket.Conn)) *wsconn.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		frames(c)
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		_ = c.Close()
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := wsconn.New(ws)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReadStreamsAcrossBinaryMessagesAndEndsWithEOF(t *testing.T) {
	c := pair(t, func(s *websocket.Conn) {
		_ = s.WriteMessage(websocket.BinaryMessage, []byte{0x30, 3})
		_ = s.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 'a'})
	})
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if string(got) != "\x30\x03\x00\x01a" {
		t.Fatalf("read %x", got)
	}
}

func TestTextFrameIsAProtocolError(t *testing.T) {
	c := pair(t, func(s *websocket.Conn) { _ = s.WriteMessage(websocket.TextMessage, []byte("hi")) })
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, wsconn.ErrNotBinary) {
		t.Fatalf("Read = %v, want ErrNotBinary", err)
	}
}
