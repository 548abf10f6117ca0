"""Every modality's task plug-ins, registered by importing them (as timm's families register).

The CLI and the service import this module once; the engine never does, so a new modality
is one package plus one line here.
"""

import medsight.ehr.tasks.risk  # noqa: F401  (registers ehr-risk)
import medsight.imaging.tasks.classify  # noqa: F401  (registers image-classify)
import medsight.imaging.tasks.segment  # noqa: F401  (registers image-segment)
import medsight.text.tasks.classify  # noqa: F401  (registers text-classify)
import medsight.text.tasks.ner  # noqa: F401  (registers text-ner)
