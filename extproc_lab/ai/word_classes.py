"""Word classes of the prompt-injection model (extproc.ai_gateway.prompt_features): the vocabulary of
instruction overrides, role play, policy talk and harmful requests, in English, German, French,
Spanish and Italian.

A class lets what is learnt of one word carry to the others: an injection that says "vergiss die
bisherigen Anweisungen" shares its class pairs (override, prior) and (prior, directive) with
"ignore the previous instructions" in the training data. Lower case; one word token each (letters
and digits, no spaces or punctuation). The trained model carries these lists in its metadata.
"""
from __future__ import annotations

WORD_CLASSES: dict[str, tuple[str, ...]] = {
    "override": (
        "ignore", "ignoring", "ignored", "disregard", "disregarding", "forget", "forgetting", "override",
        "overriding", "bypass", "bypassing", "overwrite", "discard", "abandon", "neglect",
        "ignoriere", "ignorieren", "ignoriert", "ignorier", "vergiss", "vergessen", "vergesse", "vergesst",
        "missachte", "missachten", "verwirf", "ignorez", "oublie", "oubliez", "oublier",
        "ignora", "ignorar", "olvida", "olvide", "olvidar", "dimentica", "dimenticare", "ignorare",
    ),
    "prior": (
        "previous", "prior", "above", "earlier", "preceding", "former", "initial", "original", "foregoing",
        "vorherigen", "vorherige", "vorherig", "bisherigen", "bisherige", "obigen", "obige", "vorigen",
        "vorige", "vorangegangenen", "vorausgegangenen", "früheren", "précédentes", "précédents",
        "précédente", "précédent", "antérieures", "anteriores", "anterior", "previas", "precedentes",
        "precedenti", "precedente",
    ),
    "directive": (
        "instructions", "instruction", "rules", "rule", "guidelines", "directives", "directive", "commands",
        "orders", "prompt", "prompts", "constraints", "programming", "anweisungen", "anweisung", "befehle",
        "befehl", "regeln", "vorgaben", "instruktionen", "richtlinien", "consignes", "règles",
        "instrucciones", "reglas", "órdenes", "istruzioni", "regole", "comandi",
    ),
    "persona": (
        "pretend", "roleplay", "persona", "character", "simulate", "simulating", "impersonate", "act",
        "acting", "behave", "embody", "stay", "tue", "spiele", "spiel", "rolle", "verhalte", "stell",
        "joue", "rôle", "fais", "finge", "actúa", "papel", "fingi", "interpreta", "ruolo",
    ),
    "unbound": (
        "unfiltered", "uncensored", "unrestricted", "unlimited", "unethical", "amoral", "immoral",
        "jailbreak", "jailbroken", "jailbreaking", "dan", "devmode", "limitless", "unbound", "unchained",
        "freed", "restrictions", "limitations", "limits", "boundaries", "filters", "censorship",
        "uneingeschränkt", "unzensiert", "einschränkungen", "grenzen", "restricciones",
        "límites", "restrizioni", "limiti",
    ),
    "policy": (
        "policy", "policies", "openai", "ethical", "ethics", "moral", "morals", "morality", "safety",
        "content", "guideline", "compliance", "refuse", "refusal", "decline", "apologize", "sorry",
        "ethische", "ethik", "moralische", "politique", "éthique", "política", "ética", "politica", "etica",
    ),
    "now": (
        "now", "new", "henceforth", "onwards", "onward", "anymore", "longer", "nun", "jetzt", "neue",
        "neuen", "neues", "ab", "sofort", "fortan", "maintenant", "désormais", "nouvelles", "nouvelle",
        "ahora", "nuevas", "nuevo", "nueva", "ora", "adesso", "nuove", "nuovo",
    ),
    "reveal": (
        "reveal", "print", "output", "repeat", "display", "leak", "dump", "expose", "disclose", "spell",
        "verbatim", "zeige", "zeig", "gib", "verrate", "ausgeben", "wiederhole", "offenbare", "affiche",
        "révèle", "répète", "muestra", "revela", "repite", "mostra", "rivela", "ripeti",
    ),
    "hidden": (
        "system", "hidden", "secret", "secrets", "confidential", "password", "passwords", "internal",
        "developer", "admin", "administrator", "geheim", "geheime", "geheimen", "passwort", "système",
        "secreto", "sistema", "segreto",
    ),
    "absolute": (
        "always", "never", "must", "every", "anything", "everything", "whatever", "regardless", "immer",
        "niemals", "nie", "alles", "jede", "stets", "egal", "toujours", "jamais", "tout", "siempre",
        "nunca", "todo", "sempre", "mai", "tutto",
    ),
    "harm": (
        "hack", "hacking", "hacked", "steal", "stealing", "stolen", "malware", "ransomware", "virus", "exploit",
        "weapon", "weapons", "bomb", "bombs", "explosive", "explosives", "drugs", "drug", "meth", "kill", "killing",
        "murder", "poison", "fraud", "scam", "phishing", "illegal", "illegally", "crime", "crimes", "criminal",
        "violence", "violent", "harmful", "dangerous", "racist", "hate", "terrorist", "terrorism", "suicide",
        "counterfeit", "launder", "laundering", "smuggle", "smuggling", "blackmail", "extort", "stalk", "stalking",
        "harass", "harassment", "cheat", "evade", "evading", "detection", "undetected", "untraceable",
        "waffe", "waffen", "bombe", "drogen", "töten", "stehlen", "betrug", "illegale", "hass", "gewalt",
    ),
    "addressee": (
        "you", "your", "yourself", "chatgpt", "assistant", "ai", "model", "du", "dich", "dir", "dein",
        "deine", "deinen", "tu", "vous", "votre", "toi", "usted", "tú", "tus", "tuo", "tua",
    ),
}


def lists() -> list[list[str]]:
    """The classes in order (class n is the n-th list), as the model's metadata stores them."""
    return [list(words) for words in WORD_CLASSES.values()]
