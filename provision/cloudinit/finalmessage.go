package cloudinit

import (
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// finalMessage reads final_message: a string (cloud-init's str() of a
// scalar); empty or blank is none.
func (p *parser) finalMessage(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if s, ok := p.str(n, "final_message"); ok && strings.TrimSpace(s) != "" {
		p.cfg.FinalMessage = config.Setting{Value: s, Origin: n.origin}
	}
}
