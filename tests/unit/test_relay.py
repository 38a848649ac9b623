from cephaloinit.children import MAX_LINE, SPLIT_MARKER, LineRelay


def relay():
    lines = []
    return LineRelay(lines.append), lines


def test_partial_lines_are_held_until_their_newline():
    r, lines = relay()
    r.feed(b"hel")
    r.feed(b"lo\nwor")
    assert lines == [b"hello\n"]
    r.feed(b"ld\n")
    assert lines == [b"hello\n", b"world\n"]


def test_many_lines_in_one_chunk_each_come_out_whole():
    r, lines = relay()
    r.feed(b"a\nb\n\nc\n")
    assert lines == [b"a\n", b"b\n", b"\n", b"c\n"]


def test_eof_completes_a_last_line_without_newline():
    r, lines = relay()
    r.feed(b"last words")
    r.close()
    assert lines == [b"last words\n"]
    r.close()
    assert lines == [b"last words\n"]


def test_eof_with_nothing_pending_emits_nothing():
    r, lines = relay()
    r.feed(b"done\n")
    r.close()
    assert lines == [b"done\n"]


def test_a_line_of_exactly_the_limit_is_not_split():
    r, lines = relay()
    r.feed(b"x" * MAX_LINE + b"\n")
    assert lines == [b"x" * MAX_LINE + b"\n"]


def test_a_long_line_is_split_with_a_visible_marker():
    r, lines = relay()
    r.feed(b"y" * (MAX_LINE * 2 + 10) + b"\n")
    assert lines == [
        b"y" * MAX_LINE + SPLIT_MARKER + b"\n",
        b"y" * MAX_LINE + SPLIT_MARKER + b"\n",
        b"y" * 10 + b"\n",
    ]


def test_an_endless_line_keeps_memory_bounded():
    r, lines = relay()
    for _ in range(1000):
        r.feed(b"z" * 4096)
        assert len(r.pending) <= MAX_LINE
    assert len(lines) == 1000 * 4096 // MAX_LINE
    assert all(line == b"z" * MAX_LINE + SPLIT_MARKER + b"\n" for line in lines)


def test_a_long_line_arriving_in_pieces_is_split_the_same_way():
    r, lines = relay()
    data = b"q" * (MAX_LINE + 5) + b"\nshort\n"
    for i in range(0, len(data), 1000):
        r.feed(data[i:i + 1000])
    assert lines == [b"q" * MAX_LINE + SPLIT_MARKER + b"\n", b"qqqqq\n", b"short\n"]


def test_two_sources_are_relayed_independently():
    out = []
    a, b = LineRelay(out.append), LineRelay(out.append)
    a.feed(b"from a, part")
    b.feed(b"from b\n")
    a.feed(b" two\n")
    assert out == [b"from b\n", b"from a, part two\n"]


def test_batch_mode_emits_the_whole_lines_of_a_read_at_once():
    out = []
    r = LineRelay(out.append, batch=True)
    r.feed(b"one\ntwo\nthr")
    assert out == [b"one\ntwo\n"]
    r.feed(b"ee\n")
    assert out == [b"one\ntwo\n", b"three\n"]


def test_batch_mode_still_splits_a_long_line_with_the_marker():
    out = []
    r = LineRelay(out.append, batch=True)
    r.feed(b"a\n" + b"y" * (MAX_LINE + 10) + b"\nb\n")
    assert b"".join(out) == (b"a\n" + b"y" * MAX_LINE + SPLIT_MARKER + b"\n" + b"y" * 10 + b"\nb\n")
