"""Rewriting a model card keeps the sections only a person could write."""

from vjepa_planning.worldmodel.model_card import write_card

OLD = "# m\n\n## Data\n\nold data\n\n## Provenance of the data\n\ncollect-trajectories --episodes 2000\n\n## Recipe\n\nold\n"
NEW = "# m\n\n## Data\n\nnew data\n\n## Recipe\n\npost-train --steps 5000\n\n## Training\n\n5000 steps\n"


def test_provenance_survives_a_rewrite(tmp_path):
    path = tmp_path / "card.md"
    path.write_text(OLD)
    text = write_card(path, NEW).read_text()
    assert "collect-trajectories --episodes 2000" in text and "old data" not in text and "5000 steps" in text
    assert text.index("## Provenance of the data") < text.index("## Recipe")
    assert text.count("## Provenance of the data") == 1


def test_a_card_with_its_own_provenance_or_no_old_card_is_written_as_is(tmp_path):
    path = tmp_path / "card.md"
    assert write_card(path, NEW).read_text() == NEW
    own = NEW.replace("## Recipe", "## Provenance of the data\n\nnew provenance\n\n## Recipe")
    path.write_text(OLD)
    assert write_card(path, own).read_text() == own
