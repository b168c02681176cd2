package client

import "time"

// SetRetry makes reconnection fast for tests.
func SetRetry(c *Client, base time.Duration, max int) { c.retryBase, c.maxRetries = base, max }
