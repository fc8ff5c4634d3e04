package client

import (
	"encoding/json"
	"net/http"
	"time"
)

type infoSubscription struct {
	Topic string `json:"topic"`
	QoS   uint8  `json:"qos"`
}

type infoResponse struct {
	Connected      bool               `json:"connected"`
	Started        bool               `json:"started"`
	ClientID       string             `json:"client_id"`
	Username       string             `json:"username"`
	Address        string             `json:"address"`
	KeepAliveSec   int                `json:"keepalive_seconds"`
	CleanSession   bool               `json:"clean_session"`
	SessionPresent bool               `json:"session_present"`
	ConnectedSince *time.Time         `json:"connected_since,omitempty"`
	OfflineQueued  int                `json:"offline_queued"`
	Subscriptions  []infoSubscription `json:"subscriptions"`
}

// InfoHandler serves the connection state and subscriptions as JSON. It never
// includes the password.
func (c *Client) InfoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ci := c.connInfo()
		r := infoResponse{
			Connected:      c.IsConnected(),
			ClientID:       ci.ClientID,
			Username:       ci.Username,
			Address:        ci.Address,
			KeepAliveSec:   int(ci.KeepAlive / time.Second),
			CleanSession:   ci.CleanSession,
			SessionPresent: ci.SessionPresent,
			Subscriptions:  []infoSubscription{},
		}
		if in := c.current(); in != nil {
			r.Started = true
			if in.queue != nil { // nil in multi-connection mode
				r.OfflineQueued = in.queue.Len()
			}
		}
		if r.Connected {
			c.stateMu.Lock()
			t := c.state.connectedAt
			c.stateMu.Unlock()
			r.ConnectedSince = &t
		}
		for _, s := range c.subs.all() {
			r.Subscriptions = append(r.Subscriptions, infoSubscription{Topic: s.filter, QoS: uint8(s.qos)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r)
	})
}
