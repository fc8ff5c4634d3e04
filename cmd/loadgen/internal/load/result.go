package load

import "time"

// Result is everything a run measured. It is what --json writes.
type Result struct {
	Scenario  string    `json:"scenario"`
	Broker    string    `json:"broker"`
	Protocol  string    `json:"protocol"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	Corrected bool      `json:"corrected_for_coordinated_omission"`
	// Stopped says why the run ended early or short, e.g. a resource limit.
	Stopped string   `json:"stopped,omitempty"`
	Params  []string `json:"params"`

	Conns *ConnStats   `json:"conns,omitempty"`
	Msgs  *MsgStats    `json:"messages,omitempty"`
	Storm *StormStats  `json:"storm,omitempty"`
	Proc  *BrokerStats `json:"broker_process,omitempty"`

	Connect        *Latency `json:"connect_latency,omitempty"`         // from the intended (ramp) time
	ConnectService *Latency `json:"connect_service_latency,omitempty"` // from the dial
	PubAck         *Latency `json:"publish_to_ack_latency,omitempty"`
	EndToEnd       *Latency `json:"end_to_end_latency,omitempty"`
	EndToEndSvc    *Latency `json:"end_to_end_service_latency,omitempty"` // from the actual write

	Series []Sample `json:"series"`
}

// ConnStats counts connection attempts and outcomes.
type ConnStats struct {
	Target      int   `json:"target"`
	Attempts    int64 `json:"attempts"`
	Connected   int64 `json:"connected"` // successful CONNACKs
	Peak        int64 `json:"peak"`      // most connections open at once
	AuthErrors  int64 `json:"auth_errors"`
	Refused     int64 `json:"refused"` // other CONNACK refusals
	DialErrors  int64 `json:"dial_errors"`
	Timeouts    int64 `json:"timeouts"`
	TokenErrors int64 `json:"token_errors"`
	Dropped     int64 `json:"dropped"` // connections the broker closed
	// DropReasons counts the drops by why they happened.
	DropReasons map[string]int64 `json:"drop_reasons,omitempty"`
	Churned     int64            `json:"churned"`
	RampSeconds float64          `json:"ramp_seconds"`
	ConnectRate float64          `json:"connect_rate"` // successful connects per second during the ramp
	TokenCalls  int64            `json:"token_calls"`
	// TokenSeconds is how long fetching every client's token before the ramp took.
	TokenSeconds float64 `json:"token_prefetch_seconds,omitempty"`
}

// MsgStats is the message accounting of a pubsub run.
type MsgStats struct {
	Published  int64   `json:"published"`
	Acked      int64   `json:"acked"`
	AckFailed  int64   `json:"ack_failed"`
	Expected   int64   `json:"expected"` // deliveries expected over all subscribers
	Received   int64   `json:"received"`
	Unique     int64   `json:"unique"`
	Lost       int64   `json:"lost"`
	Duplicates int64   `json:"duplicates"`
	Reordered  int64   `json:"reordered"`
	Unexpected int64   `json:"unexpected"` // not ours, or from a publisher not meant for the subscriber
	PubRate    float64 `json:"publish_rate"`
	RecvRate   float64 `json:"receive_rate"` // all deliveries per second, from the first publish to the last delivery
	// DeliveredRate counts each expected message once: the throughput figure.
	DeliveredRate float64 `json:"delivered_rate"`
	PubSeconds    float64 `json:"publish_seconds"`
}

// StormStats is what a storm run measured after the outage.
type StormStats struct {
	Dropped       int64    `json:"dropped"`
	Recovered     int64    `json:"recovered"`
	NotBack       int64    `json:"not_back"`
	AllBackSecs   float64  `json:"all_back_seconds"` // from the first drop to the last client back; -1 if not all came back
	Attempts      int64    `json:"reconnect_attempts"`
	AuthErrors    int64    `json:"auth_errors"`
	OtherErrors   int64    `json:"other_errors"`
	PeakRate      float64  `json:"peak_connect_rate"`
	Reconnect     *Latency `json:"reconnect_latency,omitempty"` // per client, from its drop to its CONNACK
	OutageError   string   `json:"outage_error,omitempty"`
	OutageSeconds float64  `json:"outage_seconds"`
}

// BrokerStats come from /proc/<pid> of the broker process.
type BrokerStats struct {
	PID           int     `json:"pid"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerMsgUs   float64 `json:"cpu_per_message_us,omitempty"`
	RSSBefore     int64   `json:"rss_before_bytes"`
	RSSLoaded     int64   `json:"rss_loaded_bytes"` // when all connections were up (conn, storm) or at the end
	RSSPerConnB   float64 `json:"rss_per_connection_bytes,omitempty"`
	MetricsErrors int64   `json:"metrics_errors,omitempty"`
}

// Sample is one point of the time series, taken every SampleInterval.
type Sample struct {
	T          float64 `json:"t"` // seconds since start
	Connected  int64   `json:"connected"`
	Connects   int64   `json:"connects"` // cumulative successful connects
	ConnErrors int64   `json:"conn_errors"`
	Published  int64   `json:"published"`
	Received   int64   `json:"received"`
	// From the broker's /metrics (-1 when not sampled).
	BrokerConns      float64 `json:"broker_connections"`
	BrokerGoroutines float64 `json:"broker_goroutines"`
	BrokerMemory     float64 `json:"broker_memory_bytes"`
	// From /proc/<pid> (0 when not sampled).
	BrokerCPU float64 `json:"broker_cpu_seconds,omitempty"`
	BrokerRSS int64   `json:"broker_rss_bytes,omitempty"`
}

// Progress is the live state passed to a progress callback.
type Progress struct {
	Elapsed    time.Duration
	Phase      string
	Connected  int64
	Target     int64
	ConnErrors int64
	Published  int64
	Received   int64
	PubRate    float64 // per second over the last interval
	RecvRate   float64
}
