package mqtttest

// Refusal is how a server ended a connection: the one packet it sent before
// closing (CONNACK or DISCONNECT; Type 0 when it sent none) and that
// packet's reason code (-1 when it sent none).
type Refusal struct {
	Type   byte
	Reason int
}

// Nothing is the Refusal of a server that closed without sending a packet.
var Nothing = Refusal{Type: 0, Reason: -1}

// ConnackRefusal and DisconnectRefusal build the expected Refusal for a
// reason code.
func ConnackRefusal(code byte) Refusal    { return Refusal{CONNACK, int(code)} }
func DisconnectRefusal(code byte) Refusal { return Refusal{DISCONNECT, int(code)} }

func (r Refusal) String() string {
	if r.Type == 0 {
		return "close without a packet"
	}
	return TypeName(r.Type) + " " + hexByte(r.Reason) + " and close"
}

func hexByte(v int) string {
	const digits = "0123456789abcdef"
	return "0x" + string(digits[v>>4&0xF]) + string(digits[v&0xF])
}

// ExpectRefusal requires the server to close the connection within Timeout
// after sending at most one CONNACK or DISCONNECT, and returns what it sent.
func (c *Conn) ExpectRefusal() Refusal {
	c.T.Helper()
	got := c.Closed(Timeout)
	switch {
	case len(got) == 0:
		return Nothing
	case len(got) == 1 && got[0].Type() == CONNACK:
		ca, err := got[0].Connack(c.Version)
		if err != nil {
			c.T.Fatal(err)
		}
		return Refusal{CONNACK, int(ca.Reason)}
	case len(got) == 1 && got[0].Type() == DISCONNECT:
		r, _, err := got[0].Disconnect()
		if err != nil {
			c.T.Fatal(err)
		}
		return Refusal{DISCONNECT, int(r)}
	}
	c.T.Fatalf("want at most one CONNACK or DISCONNECT before close, got %v", got)
	return Refusal{}
}
