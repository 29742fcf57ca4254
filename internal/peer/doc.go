// Package peer shares firmware files between the phones of one subnet, as
// Cisco's peer firmware sharing does (SPEC §9): one phone, the root,
// downloads a file from the server and passes it down a tree in which
// every phone feeds at most two children over TCP, so that a site pulls
// one copy over its WAN instead of one per phone. Unlike Cisco's, a node
// forwards every chunk (about 1 MiB) as soon as it has it and has checked
// it against the chunk's SHA-256 from the service, instead of the whole
// file once it has it all (that way remains, as Config.StoreAndForward,
// for comparison).
//
// # Trees
//
// There is one tree per file: per [Manifest], whose [Key] names the model,
// update type, version, file name and SHA-256. A phone can be the root of
// one tree, a child in another and a parent in a third. A [Node] is one
// phone: a TCP listener on its address (port 4051) and a discovery loop on
// a [Discovery] (UDP broadcast on port 4051, or a list of peers for
// simulations on loopback). [Node.Fetch] gets one file:
//
//  1. Election. The node broadcasts a QUERY for the tree every
//     OfferTimeout (200 ms). A root answers with a CLAIM. After Offers (3)
//     queries without a claim the node becomes the root itself, as Cisco's
//     phones do, unless it lately heard a query from a lower address: that
//     node is to become the root, and this one waits for its claim (at most
//     3*Offers queries). A new root claims at once and every
//     AnnounceInterval (5 s) after.
//  2. Joining. The node connects to the best root that claimed (most chunks,
//     then lowest address) and sends JOIN. The root keeps the tree's
//     membership and answers PLACE with the shallowest member that has a
//     free slot (at most two children each, the earliest joined first),
//     itself included. The JOIN lists the nodes the joiner found dead,
//     lying or full; the root forgets them.
//  3. Transfer. The node connects to that parent and sends GET with the
//     index of its first missing chunk. The parent answers ACCEPT with its
//     path (its ancestors and itself), then streams CHUNK frames in order as
//     it gets them verified, a HAVE heartbeat every StallTimeout/4 while it
//     waits, and PATH when its ancestors change. The child checks every
//     chunk against Manifest.Chunks, writes it to its destination and only
//     then serves it to its own children.
//  4. Failure. A parent that sends nothing for StallTimeout (2 s), holds
//     back a chunk it reports to have, makes no progress for
//     ProgressTimeout (2 min), breaks the protocol, appears in its own
//     path's cycle, or sends a chunk whose hash is wrong is dropped: the
//     child asks the root again, avoiding it. When the root fails too, the
//     child elects again (and may become the root, reading the rest from
//     the server); after maxFailures attempts in a row that bring no chunk
//     it reads the rest from the server. Verified chunks are never lost:
//     the node holds chunks 0..k-1 and always asks for chunk k next.
//  5. Two roots. Roots hear each other's claims. Of two unfinished roots,
//     the one with the higher address proposes to merge: in the background,
//     while it goes on reading from the server, it sends the other a JOIN
//     flagged as a root's, with its chunk count. The lower root decides,
//     with both counts fresh: if it holds as many chunks or more, it places
//     the other, which resigns and becomes a child, keeping its own
//     children; else it answers "yield", resigns and joins the other. A
//     root also proposes to a root that claims the whole file. A root that
//     has the whole file never resigns; two complete roots stay two trees.
//  6. Completion. Fetch checks the whole file against Key.SHA256, from the
//     hash it took of the verified chunks as it committed them in order
//     (a phone's CPU hashes each byte twice, not four times); only when
//     chunks came out of order does it read the file back, check every
//     chunk again and read from the server any that changed. Then it
//     returns. The node goes on serving the file, and as the root answering
//     for its tree, until [Node.Release] or [Node.Close].
//
// # Hostile peers
//
// Nothing a peer sends is trusted: chunks are checked against the
// manifest's hashes before they are written or forwarded, so a liar costs
// time, never correctness. Discovery datagrams are bounded, parsed
// strictly, and dropped unless their sender's IP is their claimed address;
// a claim must echo the nonce of a query sent lately (any node's), or, when
// unsolicited, carry a time within MaxClockSkew of the receiver's clock,
// and a claim is taken once. A forged or replayed claim that passes still
// names an address that must answer JOIN as the tree's root: a dead or
// lying one is just a failed root or parent. Paths stop cycles: a node
// refuses a child that is its ancestor, and a child leaves a parent whose
// path holds it.
//
// # Wire format
//
// All integers are big-endian. An address is 18 bytes: the IPv6 address
// (IPv4 as IPv4-mapped, ::ffff:a.b.c.d) and the TCP port; it must be
// unicast with a non-zero port. The tree ID is the SHA-256 of the string
// "deviceupdate peer tree v1\x00", then each of the Key's Model,
// UpdateType, Version, Name and SHA256 as an 8-byte length and its bytes,
// then Size and ChunkSize (8 bytes each) and every chunk hash.
//
// A discovery datagram (UDP, port 4051) is exactly 86 bytes:
//
//	offset size field
//	     0    4 magic "DUPS"
//	     4    1 version, 1
//	     5    1 type: 1 QUERY (who is the root?), 2 CLAIM (I am the root)
//	     6    2 reserved, zero
//	     8   32 tree ID
//	    40   18 sender's TCP address
//	    58    8 nonce: random, non-zero
//	    66    8 echo: in a CLAIM, the nonce of the QUERY it answers, or 0
//	            when unsolicited; 0 in a QUERY
//	    74    8 time: the sender's clock, Unix milliseconds
//	    82    4 have: in a CLAIM, the chunks the root holds; 0 in a QUERY
//
// Anything else (another length, magic or version, an unknown type,
// reserved bits set, a zero nonce, a bad address) is dropped.
//
// Transfers use TCP port 4051. Every frame is a 1-byte type, a 4-byte
// payload length and the payload. A CHUNK frame's payload is at most 4
// bytes more than the chunk size; any other frame's at most 2048 bytes;
// a longer length is an error before anything is read or allocated. A
// connection carries one request, the first frame:
//
//	type frame   direction      payload
//	   1 JOIN    child → root   tree ID, joiner's address, flags (bit 0: the joiner is a root
//	                            proposing to merge), the joiner's chunks if a root (4 bytes, else 0),
//	                            count n ≤ 32, n addresses to avoid
//	   2 PLACE   root → child   status (0 ok, 1 not the root, 2 tree full, 6 yield: to a merging
//	                            root that holds more); if ok, the parent's address
//	   3 GET     child → parent tree ID, child's address, first chunk index (4 bytes)
//	   4 ACCEPT  parent → child status (0 ok, 3 unknown file, 4 full, 5 cycle), count n ≤ 64,
//	                            n addresses: the parent's path, root first and the parent last
//	   5 CHUNK   parent → child chunk index (4 bytes), the chunk's bytes
//	   6 HAVE    parent → child chunks the parent holds (4 bytes), chunks it offers now (4 bytes)
//	   7 PATH    parent → child count n ≤ 64, n addresses: the parent's new path
//
// After ACCEPT the parent sends CHUNK frames from the first index on, in
// order, and closes the connection after the last; the child sends
// nothing more and closes the connection when it leaves. A JOIN or GET
// whose address is not the connection's source is refused. Every connect,
// handshake and write is bounded by StallTimeout, and so is the silence
// between two reads.
package peer
