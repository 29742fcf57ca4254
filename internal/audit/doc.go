// Package audit will keep the service's audit trails under
// <data>/Logs/Server/Audit: the hash-chained admin trail (admin/) and the
// daily request-handler logs of phone polls (imageUpdates/). It is part of
// the layout from the start; its code arrives with the admin commands.
package audit
