"""Running robots: the one control loop, the policies it runs, and what builds, records and shows them.

Sits above planners, robot_drivers, envs and worldmodel; the commands in apps/ are thin entry points over it.
"""
