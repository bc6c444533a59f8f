"""What a parent's free text asks for: French first, English too, whatever the accents, the case
or a typo; and nothing at all for text about something else."""

from __future__ import annotations

import pytest

from bot.services.family import Intent, detect_intent

PHRASINGS: list[tuple[str, Intent | None]] = [
    # Lost identifier
    ("J'ai perdu mon identifiant", Intent.IDENTIFIER),
    ("identifiant perdu", Intent.IDENTIFIER),
    ("IDENTIFIANT OUBLIÉ !!", Intent.IDENTIFIER),
    ("je ne retrouve plus mon identifient", Intent.IDENTIFIER),
    ("c'est quoi mon indentifiant ?", Intent.IDENTIFIER),
    ("j'ai perdu mon identifiant et mon mot de passe", Intent.IDENTIFIER),
    ("I lost my username", Intent.IDENTIFIER),
    ("what is my login", Intent.IDENTIFIER),
    # Password
    ("mot de passe oublié", Intent.PASSWORD),
    ("J’ai oublié mon mot-de-passe", Intent.PASSWORD),
    ("mdp perdu", Intent.PASSWORD),
    ("le mot de passe provisoire ne marche pas", Intent.PASSWORD),
    ("forgot password", Intent.PASSWORD),
    ("I forgot my pasword", Intent.PASSWORD),
    ("je n'arrive pas à me connecter", Intent.PASSWORD),
    # Activation
    ("comment activer mon compte ?", Intent.ACTIVATION),
    ("Activation du compte EduConnect", Intent.ACTIVATION),
    ("how do I activate my account", Intent.ACTIVATION),
    # Confirmation e-mail
    ("je n'ai pas reçu le mail", Intent.CONFIRMATION_EMAIL),
    ("pas de mail de confirmation", Intent.CONFIRMATION_EMAIL),
    ("Je n'ai toujours pas reçu l'e-mail", Intent.CONFIRMATION_EMAIL),
    ("le lien de confirmation a expiré", Intent.CONFIRMATION_EMAIL),
    ("I didn't get the confirmation email", Intent.CONFIRMATION_EMAIL),
    ("never received the email", Intent.CONFIRMATION_EMAIL),
    # Birth date
    ("la date de naissance ne marche pas", Intent.BIRTH_DATE),
    ("Date de naissance refusée", Intent.BIRTH_DATE),
    ("the birth date is refused", Intent.BIRTH_DATE),
    # Missing child
    ("mon fils n'apparaît pas", Intent.MISSING_CHILD),
    ("il manque ma fille sur le compte", Intent.MISSING_CHILD),
    ("un de mes enfants n'est pas dans la liste", Intent.MISSING_CHILD),
    ("my daughter is missing from my account", Intent.MISSING_CHILD),
    # The status of a help request
    ("où en est ma demande ?", Intent.HELP_STATUS),
    ("suivi de ma demande D-2026-0042", Intent.HELP_STATUS),
    ("what is the status of my request", Intent.HELP_STATUS),
    # Nothing to do with accounts
    ("Bonjour", None),
    ("merci beaucoup !", None),
    ("quand a lieu la réunion parents-professeurs ?", None),
    ("mon fils est absent aujourd'hui", None),
    ("je demande un rendez-vous avec la maîtresse", None),
    ("j'ai une idée pour la kermesse", None),
    ("à ma connaissance la cantine est fermée", None),
    ("passez une bonne journée", None),
    ("merci pour le mail de la sortie", None),
    ("thanks, what time is it?", None),
    ("", None),
    ("   ", None),
    ("🙂", None),
]


@pytest.mark.parametrize(("text", "intent"), PHRASINGS)
def test_free_text_is_understood_as_the_matching_help_path(
    text: str, intent: Intent | None
) -> None:
    assert detect_intent(text) == intent
